package central

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"anprd/internal/permit"
)

// ReadRecords reads permit data for a push, in one of three forms:
//
//   - JSON, a list of changes as a delta carries them:
//     [{"op":"put","permit":{...}}, {"op":"delete","block":{"plate":"AB12345"}}]
//   - JSON, an object of record lists, each record a put:
//     {"facilities":[...],"products":[...],"pools":[...],"permits":[...],
//     "accounts":[...],"blocks":[...],"closures":[...]}
//   - CSV with a header row: a "kind" column (facility, product, pool,
//     permit, account, block, closure) and one column per field, named as
//     in JSON (id, tenant, product, status, valid_from, plates, ...). List
//     fields (plates, zones) are separated by ";"; an empty cell
//     leaves the field out; an "op" column may say delete. Nested fields
//     (a product's windows, a facility's zones) need JSON.
//
// Every record is decoded strictly and checked as the box will check it.
func ReadRecords(data []byte) ([]permit.Change, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("no records")
	}
	var cs []permit.Change
	var err error
	switch trimmed[0] {
	case '[':
		cs, err = permit.DecodeChanges(trimmed)
	case '{':
		cs, err = readObject(trimmed)
	default:
		cs, err = readCSV(data)
	}
	if err != nil {
		return nil, err
	}
	return cs, nil
}

func readObject(data []byte) ([]permit.Change, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, err
	}
	var all []json.RawMessage
	for _, key := range []string{"facilities", "products", "pools", "permits", "accounts", "blocks", "closures"} {
		raw, ok := obj[key]
		if !ok {
			continue
		}
		delete(obj, key)
		var recs []json.RawMessage
		if err := json.Unmarshal(raw, &recs); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		field := kinds[key]
		for _, r := range recs {
			c, _ := json.Marshal(map[string]json.RawMessage{"op": json.RawMessage(`"put"`), field: r})
			all = append(all, c)
		}
	}
	for k := range obj {
		return nil, fmt.Errorf("unknown list %q; the lists are facilities, products, pools, permits, accounts, blocks, closures", k)
	}
	b, _ := json.Marshal(all)
	return permit.DecodeChanges(b)
}

// kinds maps list names and CSV kinds to the Change field.
var kinds = map[string]string{
	"facilities": "facility", "products": "product", "pools": "pool", "permits": "permit",
	"accounts": "account", "blocks": "block", "closures": "closure",
	"facility": "facility", "product": "product", "pool": "pool", "permit": "permit",
	"account": "account", "block": "block", "closure": "closure",
}

// fieldTypes maps each record kind to its JSON fields' Go types.
var fieldTypes = func() map[string]map[string]reflect.Type {
	out := map[string]map[string]reflect.Type{}
	ct := reflect.TypeFor[permit.Change]()
	for f := range ct.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Type.Kind() != reflect.Pointer {
			continue
		}
		fields := map[string]reflect.Type{}
		rt := f.Type.Elem()
		for rf := range rt.Fields() {
			n, _, _ := strings.Cut(rf.Tag.Get("json"), ",")
			if n != "" && n != "-" {
				fields[n] = rf.Type
			}
		}
		out[name] = fields
	}
	return out
}()

func readCSV(data []byte) ([]permit.Change, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("csv: %w", err)
	}
	kindCol, opCol := -1, -1
	for i, h := range head {
		head[i] = strings.TrimSpace(h)
		switch head[i] {
		case "kind":
			kindCol = i
		case "op":
			opCol = i
		}
	}
	if kindCol < 0 {
		return nil, errors.New("csv: the header has no kind column")
	}
	var all []json.RawMessage
	for line := 2; ; line++ {
		row, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("csv: %w", err)
		}
		kind, ok := kinds[strings.TrimSpace(row[kindCol])]
		if !ok {
			return nil, fmt.Errorf("csv line %d: kind %q is not facility, product, pool, permit, account, block or closure", line, row[kindCol])
		}
		op := "put"
		if opCol >= 0 && opCol < len(row) && strings.TrimSpace(row[opCol]) != "" {
			op = strings.TrimSpace(row[opCol])
		}
		rec := map[string]any{}
		for i, cell := range row {
			cell = strings.TrimSpace(cell)
			if i == kindCol || i == opCol || cell == "" || i >= len(head) {
				continue
			}
			t, ok := fieldTypes[kind][head[i]]
			if !ok {
				return nil, fmt.Errorf("csv line %d: a %s has no field %q", line, kind, head[i])
			}
			v, err := cellValue(t, cell)
			if err != nil {
				return nil, fmt.Errorf("csv line %d, %s: %w", line, head[i], err)
			}
			rec[head[i]] = v
		}
		c, _ := json.Marshal(map[string]any{"op": op, kind: rec})
		all = append(all, c)
	}
	b, _ := json.Marshal(all)
	return permit.DecodeChanges(b)
}

// cellValue converts a CSV cell to the JSON value of a field of type t.
func cellValue(t reflect.Type, cell string) (any, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice:
		if t.Elem().Kind() != reflect.String {
			return nil, errors.New("a nested list; use JSON")
		}
		var out []string
		for _, v := range strings.Split(cell, ";") {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
		}
		return out, nil
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.Atoi(cell)
		if err != nil {
			return nil, fmt.Errorf("%q is not a whole number", cell)
		}
		return n, nil
	case reflect.Bool:
		b, err := strconv.ParseBool(cell)
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", cell)
		}
		return b, nil
	case reflect.Struct:
		// time.Time and permit.Moment are written as strings.
		return cell, nil
	case reflect.String:
		return cell, nil
	}
	return nil, fmt.Errorf("a %v field; use JSON", t)
}
