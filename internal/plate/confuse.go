package plate

// confusion maps each character of a confusion class to the class's
// representative. Recognisers mistake the members of a class for each
// other: O/0/D/Q, I/1/L, B/8, S/5, Z/2, G/6 (domain.md).
var confusion = func() [256]byte {
	var t [256]byte
	for c := 0; c < 256; c++ {
		t[c] = byte(c)
	}
	for _, class := range []string{"0ODQ", "1IL", "8B", "5S", "2Z", "6G"} {
		for i := 0; i < len(class); i++ {
			t[class[i]] = class[0]
		}
	}
	return t
}()

// ConfusionKey maps a normalised plate to the key it shares with every
// plate a recogniser could confuse it with: each character is replaced by
// its confusion class's representative. Two plates with the same key
// differ only by substitutions within classes. The permit store indexes
// plates by this key so that an exact and a near match are one lookup.
func ConfusionKey(p string) string {
	b := make([]byte, len(p))
	for i := 0; i < len(p); i++ {
		b[i] = confusion[p[i]]
	}
	return string(b)
}

// Confusable reports whether a and b differ only by substitutions within
// confusion classes (and are therefore the same plate to a recogniser).
func Confusable(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if confusion[a[i]] != confusion[b[i]] {
			return false
		}
	}
	return true
}

// ConfusionOf is ConfusionKey for one character.
func ConfusionOf(c byte) byte { return confusion[c] }
