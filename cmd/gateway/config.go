package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// applyEnv sets every flag not in given from its GATEWAY_<NAME> variable,
// when that is set, and adds it to given.
func applyEnv(fs *flag.FlagSet, lookup func(string) (string, bool), given map[string]bool) (err error) {
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		name := "GATEWAY_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := lookup(name); ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %v", name, v, e)
			}
			given[f.Name] = true
		}
	})
	return err
}

// notInFile are flags that make no sense as keys of a config file.
var notInFile = map[string]bool{"config": true, "print-config": true}

// applyFile sets every flag not in given from the TOML file at path, whose
// keys are the flags' names. An unknown key, a table, or a value of the
// wrong kind is an error that names the key and the file.
func applyFile(fs *flag.FlagSet, path string, given map[string]bool) error {
	var raw map[string]any
	if _, err := toml.DecodeFile(path, &raw); err != nil {
		return fmt.Errorf("--config %s: %w", path, err)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the first bad key reported is the same every run
	for _, k := range keys {
		f := fs.Lookup(k)
		if f == nil || notInFile[k] {
			hint := ""
			if g := fs.Lookup(strings.ReplaceAll(k, "_", "-")); g != nil && !notInFile[g.Name] {
				hint = fmt.Sprintf(" (did you mean %q?)", g.Name)
			}
			return fmt.Errorf("--config %s: unknown key %q%s; the keys are the flag names, see gateway --help", path, k, hint)
		}
		v, err := flagText(raw[k])
		if err != nil {
			return fmt.Errorf("--config %s: key %q: %v", path, k, err)
		}
		if given[k] {
			continue
		}
		if err := f.Value.Set(v); err != nil {
			return fmt.Errorf("--config %s: key %q = %q: %v", path, k, v, err)
		}
		given[k] = true
	}
	return nil
}

// flagText turns a TOML value into the text its flag parses. Lists (of
// strings) are joined with commas, as --origins takes them.
func flagText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return "", fmt.Errorf("a list may only hold strings")
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	case map[string]any:
		return "", fmt.Errorf("tables are not supported; every key sits at the top level")
	case time.Time:
		return "", fmt.Errorf("a date is not a valid value; durations are strings like \"25s\"")
	}
	return "", fmt.Errorf("unsupported value %v", v)
}

// secretFlags are left out of --print-config's output. The URLs are among
// them because they may carry credentials (user:pass@, a token in the
// query).
var secretFlags = map[string]bool{"jwt-secret": true, "api-key": true, "redis-url": true,
	"hook-secret": true, "hook-url": true}

// printConfig writes the effective configuration, every flag with its
// value, as a config file that --config reads back to the same settings
// (secrets excepted: they are named in a comment, never printed).
func printConfig(w io.Writer, fs *flag.FlagSet) error {
	values := map[string]any{}
	var secrets []string
	fs.VisitAll(func(f *flag.Flag) {
		switch {
		case notInFile[f.Name]:
		case secretFlags[f.Name]:
			if f.Value.String() != "" {
				secrets = append(secrets, f.Name)
			}
		default:
			switch v := f.Value.(flag.Getter).Get().(type) {
			case bool, int64, float64:
				values[f.Name] = v
			case int:
				values[f.Name] = int64(v)
			default:
				values[f.Name] = f.Value.String()
			}
		}
	})
	if _, err := fmt.Fprintln(w, "# gateway configuration (gateway --print-config); keys are the flag names."); err != nil {
		return err
	}
	for _, name := range secrets {
		if _, err := fmt.Fprintf(w, "# %s is set (not printed)\n", name); err != nil {
			return err
		}
	}
	return toml.NewEncoder(w).Encode(values)
}
