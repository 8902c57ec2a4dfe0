package plate

// country is one row of the countries table: its band code(s) and its
// plates' layouts, current first. docs/plates.md shows the same table; a
// test keeps the two in step.
type country struct {
	code  Country
	name  string
	bands []string // the code in the EU band (or the international code), current first
	// layouts, as patterns for expand: L letter, D digit, A either, a count
	// in braces, spaces where the plate has its gaps.
	layouts []layout
}

type layout struct {
	name      string
	pattern   string
	prefixes  string // space-separated; see Format.Prefixes
	noLetters string
	max       int // the longest plate of the layout, when its counts allow more; 0: no bound
}

func (l layout) maxLen() int {
	if l.max == 0 {
		return 1 << 10
	}
	return l.max
}

// The countries of the EU and the EEA, Switzerland and the United Kingdom.
// Each layout is a country's current standard series for cars, and the
// previous series still common on the road; personalised, diplomatic,
// military and trade plates are left to the generic format. Where a
// two-row plate's text, read top row then bottom row, is not one of the
// one-row layouts, its layout is listed too.
var countryTable = []country{
	// Austria: district (one letter for the state capitals, two for the
	// other districts), the state's coat of arms, then digits and letters
	// (W 12345 A, GU 123 AB, FK 1 ABC). Letters before the digits are a
	// personalised plate.
	{"AT", "Austria", []string{"A"}, []layout{
		{name: "standard", pattern: "L{1,2} D{1,5} L{1,3}", max: 8},
	}},
	// Belgium: 1-ABC-123 since 2010; ABC-123 (2008-2010) and 123-ABC
	// (1973-2008) before.
	{"BE", "Belgium", []string{"B"}, []layout{
		{name: "2010", pattern: "D LLL DDD"},
		{name: "2008", pattern: "LLL DDD"},
		{name: "1973", pattern: "DDD LLL"},
	}},
	// Bulgaria: province (one or two letters), four digits, two letters
	// (CA 1234 AB). Only the Latin letters that look like Cyrillic ones
	// are used: A B E K M H O P C T Y X.
	{"BG", "Bulgaria", []string{"BG"}, []layout{
		{name: "standard", pattern: "L{1,2} DDDD LL", noLetters: "DFGIJLNQRSUVWZ"},
	}},
	// Croatia: city (two letters), the coat of arms, three or four digits,
	// one or two letters (ZG 1234-AB). The Croatian alphabet has no Q, W,
	// X, Y.
	{"HR", "Croatia", []string{"HR"}, []layout{
		{name: "standard", pattern: "LL D{3,4} L{1,2}", noLetters: "QWXY"},
	}},
	// Cyprus: three letters and three digits (ABC 123).
	{"CY", "Cyprus", []string{"CY"}, []layout{
		{name: "standard", pattern: "LLL DDD"},
	}},
	// Czechia: a digit, the region's letter, a digit or a letter, then
	// four digits (1A2 3456, 1AB 2345).
	{"CZ", "Czechia", []string{"CZ"}, []layout{
		{name: "standard", pattern: "DLA DDDD"},
	}},
	// Denmark: two letters and five digits (AB 12 345).
	{"DK", "Denmark", []string{"DK"}, []layout{
		{name: "standard", pattern: "LL DD DDD"},
	}},
	// Estonia: three digits and three letters (123 ABC).
	{"EE", "Estonia", []string{"EST"}, []layout{
		{name: "standard", pattern: "DDD LLL"},
	}},
	// Finland: two or three letters and one to three digits (ABC-123);
	// the common lengths.
	{"FI", "Finland", []string{"FIN"}, []layout{
		{name: "standard", pattern: "LLL DDD"},
		{name: "short", pattern: "LLL DD"},
		{name: "two letters", pattern: "LL DDD"},
	}},
	// France: AB-123-CD since 2009 (SIV; no I, O, U); the département
	// series (FNI, 123 AB 75) before, still on cars not sold since.
	{"FR", "France", []string{"F"}, []layout{
		{name: "SIV", pattern: "LL DDD LL", noLetters: "IOU"},
		{name: "FNI", pattern: "D{1,4} L{1,3} DD"},
	}},
	// Germany: district (one to three letters), one or two letters, one to
	// four digits (B AB 1234, HH X 123), eight characters at most; the
	// separators are not read.
	{"DE", "Germany", []string{"D"}, []layout{
		{name: "standard", pattern: "L{1,3} L{1,2} D{1,4}", max: 8},
	}},
	// Greece: three letters and four digits (ABC-1234), the letters only
	// those that Greek and Latin share: A B E H I K M N O P T X Y Z.
	{"GR", "Greece", []string{"GR"}, []layout{
		{name: "standard", pattern: "LLL DDDD", noLetters: "CDFGJLQRSUVW"},
	}},
	// Hungary: AA AA-123 since July 2022; ABC-123 (1990-2022) before.
	{"HU", "Hungary", []string{"H"}, []layout{
		{name: "2022", pattern: "LL LL DDD"},
		{name: "1990", pattern: "LLL DDD"},
	}},
	// Ireland: year (three digits since 2013, two before), county (one or
	// two letters), serial of one to six digits (191-D-12345, 08-KY-123).
	{"IE", "Ireland", []string{"IRL"}, []layout{
		{name: "2013", pattern: "DDD L{1,2} D{1,6}"},
		{name: "1987", pattern: "DD L{1,2} D{1,6}"},
	}},
	// Italy: AB 123 CD since 1994, no I, O, Q, U. Motorcycles (two rows
	// since 1999): two letters over five digits.
	{"IT", "Italy", []string{"I"}, []layout{
		{name: "standard", pattern: "LL DDD LL", noLetters: "IOQU"},
		{name: "motorcycle", pattern: "LL DDDDD", noLetters: "IOQU"},
	}},
	// Latvia: two letters and one to four digits (AB-1234).
	{"LV", "Latvia", []string{"LV"}, []layout{
		{name: "standard", pattern: "LL D{1,4}"},
	}},
	// Lithuania: three letters and three digits (ABC 123).
	{"LT", "Lithuania", []string{"LT"}, []layout{
		{name: "standard", pattern: "LLL DDD"},
	}},
	// Luxembourg: two letters and four digits (AB 1234) since 2003; one
	// letter and four digits, two letters and three digits before.
	{"LU", "Luxembourg", []string{"L"}, []layout{
		{name: "2003", pattern: "LL DDDD"},
		{name: "previous", pattern: "L DDDD"},
		{name: "previous", pattern: "LL DDD"},
	}},
	// Malta: three letters and three digits (ABC 123).
	{"MT", "Malta", []string{"M"}, []layout{
		{name: "standard", pattern: "LLL DDD"},
	}},
	// Netherlands: the side codes for cars, three groups of one to three
	// characters each; no vowels, C or Q (and no Y since side code 7).
	{"NL", "Netherlands", []string{"NL"}, []layout{
		{name: "side code 11", pattern: "LLL DD L", noLetters: "AEIOUCQY"},
		{name: "side code 10", pattern: "L DDD LL", noLetters: "AEIOUCQY"},
		{name: "side code 9", pattern: "LL DDD L", noLetters: "AEIOUCQY"},
		{name: "side code 8", pattern: "D LLL DD", noLetters: "AEIOUCQY"},
		{name: "side code 7", pattern: "DD LLL D", noLetters: "AEIOUCQY"},
		{name: "side code 6", pattern: "DD LL LL", noLetters: "AEIOUCQ"},
		{name: "side code 5", pattern: "LL LL DD", noLetters: "AEIOUCQ"},
		{name: "side code 4", pattern: "LL DD LL", noLetters: "AEIOUCQ"},
	}},
	// Poland: district (two or three letters) and four or five
	// characters; the common series.
	{"PL", "Poland", []string{"PL"}, []layout{
		{name: "2+5", pattern: "LL DDDDD"},
		{name: "3+4", pattern: "LLL DDDD"},
		{name: "2+4L", pattern: "LL DDDDL"},
		{name: "3+4L", pattern: "LLL DDDL"},
	}},
	// Portugal: AB-12-CD since 2020; 12-AB-34 (2005), 12-34-AB (1992) and
	// AB-12-34 before.
	{"PT", "Portugal", []string{"P"}, []layout{
		{name: "2020", pattern: "LL DD LL"},
		{name: "2005", pattern: "DD LL DD"},
		{name: "1992", pattern: "DD DD LL"},
		{name: "before 1992", pattern: "LL DD DD"},
	}},
	// Romania: county (B for Bucharest, two letters for the 41 counties),
	// two digits (two or three in Bucharest), three letters (B 123 ABC,
	// CJ 12 ABC).
	{"RO", "Romania", []string{"RO"}, []layout{
		{name: "Bucharest", prefixes: "B", pattern: "D{2,3} LLL"},
		{name: "county", prefixes: "AB AG AR BC BH BN BR BT BV BZ CJ CL CS CT CV DB DJ GJ GL GR HD HR IF IL IS MH MM MS NT OT PH SB SJ SM SV TL TM TR VL VN VS", pattern: "DD LLL"},
	}},
	// Slovakia: two letters (the district's until 2022), three digits,
	// two letters (BA 123 AB).
	{"SK", "Slovakia", []string{"SK"}, []layout{
		{name: "standard", pattern: "LL DDD LL"},
	}},
	// Slovenia: region (two letters), the coat of arms, a block of four or
	// five letters and digits without O (LJ A1-234).
	{"SI", "Slovenia", []string{"SLO"}, []layout{
		{name: "standard", prefixes: "CE GO KK KP KR LJ MB MS NM PO SG", pattern: "A{4,5}", noLetters: "O"},
	}},
	// Spain: four digits and three consonants (1234 BCD) since 2000; the
	// provincial series (M 1234 AB) before.
	{"ES", "Spain", []string{"E"}, []layout{
		{name: "2000", pattern: "DDDD LLL", noLetters: "AEIOUQ"},
		{name: "provincial", pattern: "L{1,2} DDDD L{1,2}"},
	}},
	// Sweden: ABC 123 and, since 2019, ABC 12A. I, Q, V, Å, Ä, Ö are not
	// used.
	{"SE", "Sweden", []string{"S"}, []layout{
		{name: "standard", pattern: "LLL DDD", noLetters: "IQV"},
		{name: "2019", pattern: "LLL DDL", noLetters: "IQV"},
	}},
	// Norway: two letters and five digits (four on older plates and on
	// motorcycles, mopeds and trailers); the two-row plate has the letters
	// over the digits. The electric series (EL, EK, EV, EB, EC, ED, EE,
	// EF, EH, EJ) use the same layout.
	{"NO", "Norway", []string{"N"}, []layout{
		{name: "standard", pattern: "LL DDDDD"},
		{name: "four digits", pattern: "LL DDDD"},
	}},
	// Iceland: AB C12 since 2007; AB 123 (1989-2007) before.
	{"IS", "Iceland", []string{"IS"}, []layout{
		{name: "2007", pattern: "LL LDD"},
		{name: "1989", pattern: "LL DDD"},
	}},
	// Liechtenstein: FL, the coat of arms and one to five digits
	// (FL 12345); no EU band.
	{"LI", "Liechtenstein", []string{"FL"}, []layout{
		{name: "standard", prefixes: "FL", pattern: "D{1,5}"},
	}},
	// Switzerland: canton (two letters), one to six digits (ZH 123456); no
	// EU band.
	{"CH", "Switzerland", []string{"CH"}, []layout{
		{name: "standard", prefixes: "AG AI AR BE BL BS FR GE GL GR JU LU NE NW OW SG SH SO SZ TG TI UR VD VS ZG ZH", pattern: "D{1,6}"},
	}},
	// United Kingdom: AB12 CDE since 2001, no I or Q; the prefix series
	// (A123 BCD, 1983-2001); Northern Ireland's three letters and up to
	// four digits (ABZ 1234). The band shows UK, GB before 2021. The
	// two-row plate is AB12 over CDE.
	{"GB", "United Kingdom", []string{"UK", "GB"}, []layout{
		{name: "2001", pattern: "LLDD LLL", noLetters: "IQ"},
		{name: "prefix", pattern: "L D{1,3} LLL"},
		{name: "Northern Ireland", pattern: "LLL D{1,4}"},
	}},
}
