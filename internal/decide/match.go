package decide

import (
	"slices"

	"anprd/internal/permit"
	"anprd/internal/plate"
)

// maxPlateLen: longer readings are not plates (permit data refuses them).
const maxPlateLen = 12

// match is what the plate read matched among the registrations.
type match struct {
	plate     string // the registered plate decided on; "" for none
	how       Match
	holders   []permit.Holder // the records registering plate
	ambiguous []string        // set when the read could be several plates
	refused   Reason          // a near match that the rules did not allow
}

// readings are the plate as read and the reader's other readings,
// normalised, without repeats, the read first.
func readings(read string, cands []string) []string {
	out := []string{read}
	for _, c := range cands {
		c = plate.Normalize(c)
		if c != "" && len(c) <= maxPlateLen && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// matchRegistered finds the registrations of the plate read. A plate
// registered exactly as read is the match. Otherwise every registered
// plate that another reading names, or that differs from a reading only
// by confused characters, is a near match: one near match is used if the
// lane allows near matches and the read is confident; several are
// ambiguous, which is no match, and said so.
func matchRegistered(r Read, read string, l *Lane, st Store) (match, error) {
	byKey := map[string][]permit.Holder{}
	holders := func(p string) ([]permit.Holder, error) {
		k := plate.ConfusionKey(p)
		if hs, ok := byKey[k]; ok {
			return hs, nil
		}
		hs, err := st.Holders(k)
		byKey[k] = hs
		return hs, err
	}
	hs, err := holders(read)
	if err != nil {
		return match{}, err
	}
	if exact := of(hs, read); len(exact) > 0 {
		return match{plate: read, how: MatchExact, holders: exact}, nil
	}
	var found []string
	var all []permit.Holder
	for _, c := range readings(read, r.Candidates) {
		hs, err := holders(c)
		if err != nil {
			return match{}, err
		}
		for _, h := range hs {
			if !slices.Contains(found, h.Plate) {
				found = append(found, h.Plate)
			}
			all = append(all, h)
		}
	}
	p, how, amb, refused := near(found, r, read, l)
	if p == "" {
		return match{ambiguous: amb, refused: refused}, nil
	}
	return match{plate: p, how: how, holders: of(all, p)}, nil
}

// of returns the holders of plate p.
func of(hs []permit.Holder, p string) []permit.Holder {
	var out []permit.Holder
	for _, h := range hs {
		if h.Plate == p && !slices.ContainsFunc(out, func(o permit.Holder) bool { return holderKey(o) == holderKey(h) }) {
			out = append(out, h)
		}
	}
	return out
}

// near applies the near-match rule to the distinct plates found: one is
// used only when the lane allows near matches and the read is confident;
// several are ambiguous. It is also used at exits, on the plates inside.
func near(found []string, r Read, read string, l *Lane) (p string, how Match, ambiguous []string, refused Reason) {
	switch {
	case len(found) == 0:
		return "", MatchNone, nil, ""
	case len(found) > 1:
		amb := slices.Clone(found)
		slices.Sort(amb)
		return "", MatchNone, amb, ""
	case !l.Fuzzy:
		return "", MatchNone, nil, NearMatchOff
	case r.Conf < l.FuzzyMinConfidence:
		return "", MatchNone, nil, NearMatchUnsure
	}
	how = MatchConfusion
	if slices.Contains(readings(read, r.Candidates), found[0]) {
		how = MatchCandidate
	}
	return found[0], how, nil, ""
}
