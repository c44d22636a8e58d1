package config

// Walking the yaml.Node tree of the config file: decoding it into FileConfig
// with field paths in the errors, and finding the line of a setting.

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decode fills v from n, driven by the yaml tags of v's type. It does by hand
// what yaml.v3 would do so that unknown keys, duplicates and type errors are
// reported with their field path, not just a line and a Go type name.
func (p *parser) decode(n *yaml.Node, v reflect.Value, path string) {
	n = unalias(n)
	if isNull(n) {
		return // null means "not set": the default applies
	}
	switch v.Kind() {
	case reflect.Struct, reflect.Map:
		if n.Kind != yaml.MappingNode {
			p.addf(n.Line, path, "expected a mapping, got %s", describeNode(n))
		} else if v.Kind() == reflect.Struct {
			p.decodeStruct(n, v, path)
		} else {
			p.decodeMap(n, v, path)
		}
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		p.decode(n, elem.Elem(), path)
		v.Set(elem)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			p.addf(n.Line, path, "expected a list such as [a, b], got %s", describeNode(n))
			return
		}
		p.decodeLeaf(n, v, path)
	default:
		p.decodeLeaf(n, v, path)
	}
}

func (p *parser) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	var names []string
	index := make(map[string]int)
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		names = append(names, tag)
		index[tag] = i
	}
	p.eachKey(n, path, func(key string, k, val *yaml.Node) {
		if i, ok := index[key]; ok {
			p.decode(val, v.Field(i), joinPath(path, key))
		} else {
			p.addf(k.Line, joinPath(path, key), "unknown field (known fields: %s)", cmp.Or(strings.Join(names, ", "), "none"))
		}
	})
}

func (p *parser) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	p.eachKey(n, path, func(key string, _, val *yaml.Node) {
		elem := reflect.New(v.Type().Elem()).Elem()
		p.decode(val, elem, joinPath(path, key))
		v.SetMapIndex(reflect.ValueOf(key), elem)
	})
}

// eachKey calls fn for every key of mapping n once, reporting keys that are
// not plain scalars, merge keys and duplicates (yaml.v3 only catches those
// when decoding straight into a map or struct, which we do not).
func (p *parser) eachKey(n *yaml.Node, path string, fn func(key string, k, val *yaml.Node)) {
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := unalias(n.Content[i]), n.Content[i+1]
		switch {
		case k.Kind != yaml.ScalarNode:
			p.addf(k.Line, path, "keys must be plain strings, got %s", describeNode(k))
		case k.Tag == "!!merge":
			p.addf(k.Line, path, "merge keys (<<) are not supported")
		case seen[k.Value] != 0:
			p.addf(k.Line, joinPath(path, k.Value), "duplicate key (already set on line %d)", seen[k.Value])
		default:
			seen[k.Value] = k.Line
			fn(k.Value, k, val)
		}
	}
}

// decodeLeaf lets yaml.v3 convert scalars and lists of scalars, then moves
// its line numbers into our message format.
func (p *parser) decodeLeaf(n *yaml.Node, v reflect.Value, path string) {
	err := n.Decode(v.Addr().Interface())
	var te *yaml.TypeError
	switch {
	case errors.As(err, &te):
		for _, msg := range te.Errors {
			line, msg := splitLine(msg, n.Line)
			p.addf(line, path, "%s", msg)
		}
	case err != nil:
		p.addf(n.Line, path, "%v", err)
	}
}

func unalias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "an alias"
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// find walks mapping keys and list indexes down from the root, so checks of
// what the types cannot express can name a line, and can tell an omitted
// setting from one set to its zero value ("timeout: 0s" is an error, not "use
// the default"). It returns the last key (or list item) and value reached, and
// whether it got all the way, so callers can point at the nearest enclosing line.
func (p *parser) find(keys ...string) (key, val *yaml.Node, ok bool) {
	if p.root == nil {
		return nil, nil, false
	}
	val = p.root
	for _, k := range keys {
		next, nextKey := child(unalias(val), k)
		if next == nil {
			return key, val, false
		}
		key, val = nextKey, next
	}
	return key, val, true
}

func child(n *yaml.Node, k string) (val, key *yaml.Node) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if unalias(n.Content[i]).Value == k {
				return n.Content[i+1], n.Content[i]
			}
		}
	case yaml.SequenceNode:
		if i, err := strconv.Atoi(k); err == nil && i >= 0 && i < len(n.Content) {
			return n.Content[i], n.Content[i]
		}
	}
	return nil, nil
}

// line is where the value at keys starts (or the nearest enclosing node).
func (p *parser) line(keys ...string) int {
	if _, val, _ := p.find(keys...); val != nil {
		return val.Line
	}
	return 0
}

// keyLine is where the key at keys is written; used for problems with a
// whole entry rather than with its value.
func (p *parser) keyLine(keys ...string) int {
	if key, _, _ := p.find(keys...); key != nil {
		return key.Line
	}
	return 0
}
