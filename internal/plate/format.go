package plate

// A Country is an ISO 3166 alpha-2 code in upper case, or "" for the
// generic format that lets a foreign car still be read.
type Country string

// Format is one plate layout: a sequence of character classes.
type Format struct {
	Country Country
	Name    string
	Pattern string // one class per position: L letter, D digit, A either
	// NoLetters lists letters a country never issues in this format;
	// a read with one of them is not this format.
	NoLetters string
}

// Formats are the layouts anprd knows, per country. Personalised plates
// have no fixed layout and are matched by the generic format.
var Formats = []Format{
	// Norway: two letters and five digits (four on older and some
	// motorcycle plates). The electric series (EL, EK, EV, EB, EC, ED,
	// EE, EF, EH, EJ) use the same layout.
	{Country: "NO", Name: "standard", Pattern: "LLDDDDD"},
	{Country: "NO", Name: "four digits", Pattern: "LLDDDD"},
	// Sweden: ABC123 and, since 2019, ABC12A. I, Q, V, Å, Ä, Ö are not
	// used.
	{Country: "SE", Name: "standard", Pattern: "LLLDDD", NoLetters: "IQV"},
	{Country: "SE", Name: "2019", Pattern: "LLLDDL", NoLetters: "IQV"},
	// Denmark: two letters and five digits.
	{Country: "DK", Name: "standard", Pattern: "LLDDDDD"},
	// Finland: two or three letters and one to three digits.
	{Country: "FI", Name: "standard", Pattern: "LLLDDD"},
	{Country: "FI", Name: "short", Pattern: "LLLDD"},
	{Country: "FI", Name: "two letters", Pattern: "LLDDD"},
	// Germany: district (1-3 letters), 1-2 letters, 1-4 digits; the
	// separators are not read. Only the common lengths are listed; others
	// fall to the generic format.
	{Country: "DE", Name: "1+2+4", Pattern: "LLLDDDD"},
	{Country: "DE", Name: "2+2+4", Pattern: "LLLLDDDD"},
	{Country: "DE", Name: "2+2+3", Pattern: "LLLLDDD"},
	{Country: "DE", Name: "3+2+3", Pattern: "LLLLLDDD"},
	{Country: "DE", Name: "1+1+4", Pattern: "LLDDDD"},
	// Poland: two or three letters of the district and four or five
	// characters.
	{Country: "PL", Name: "2+5", Pattern: "LLDDDDD"},
	{Country: "PL", Name: "3+4", Pattern: "LLLDDDD"},
	{Country: "PL", Name: "2+4L", Pattern: "LLDDDDL"},
	{Country: "PL", Name: "3+4L", Pattern: "LLLDDDL"},
}

// Generic bounds: what a plate of an unknown country may be.
const (
	GenericMin = 2
	GenericMax = 8
)

// classOK reports whether r fits class c of format f.
func (f *Format) classOK(c byte, r byte) bool {
	switch c {
	case 'L':
		if r < 'A' || r > 'Z' {
			return false
		}
		for i := 0; i < len(f.NoLetters); i++ {
			if f.NoLetters[i] == r {
				return false
			}
		}
		return true
	case 'D':
		return r >= '0' && r <= '9'
	}
	return true
}

// toLetter and toDigit are the recogniser's usual confusions, used only
// to fit a read to a format's letter or digit position.
var (
	toLetter = map[byte]byte{'0': 'O', '1': 'I', '8': 'B', '5': 'S', '2': 'Z', '6': 'G'}
	toDigit  = map[byte]byte{'O': '0', 'D': '0', 'Q': '0', 'I': '1', 'B': '8', 'S': '5', 'Z': '2', 'G': '6'}
)

// bandCodes are the country codes in the EU band at a plate's left edge.
var bandCodes = map[Country]string{"NO": "N", "SE": "S", "DK": "DK", "FI": "FIN", "DE": "D", "PL": "PL"}

// BandCode is the code country's plates show in the EU band, or "".
func BandCode(c Country) string { return bandCodes[c] }
