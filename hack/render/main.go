// Command render is a small, faithful stand-in for `helm template`, written
// because no helm binary can be installed on the project's machines. It uses
// the same engine Helm uses — Go text/template with the sprig function
// library — and implements the subset of Helm this project's chart relies on:
//
//   - .Values (values.yaml coalesced with -f files, --set, --set-string,
//     --set-file, in Helm's order), numbers loaded as float64 like Helm does
//   - .Release (Name, Namespace, Service, IsInstall, IsUpgrade, Revision)
//   - .Chart (Chart.yaml metadata), .Template (Name, BasePath)
//   - .Capabilities (KubeVersion, APIVersions.Has)
//   - .Files (Get, GetBytes, Glob, Lines) honouring .helmignore
//   - include, tpl, required, fail, toYaml, fromYaml, fromYamlArray, toJson,
//     fromJson, fromJsonArray, lookup (an empty map: we are offline, exactly
//     like `helm template`; --lookup-objects FILE makes it find those objects,
//     to render an upgrade as `helm upgrade` sees the cluster)
//   - sprig minus env/expandenv (Helm removes them), missingkey=zero and the
//     "<no value>" scrub, partials (files starting with "_") not emitted,
//     NOTES.txt rendered (an error in it fails the render, as in Helm) but
//     not emitted (--notes prints it instead of the manifests, as
//     `helm install` shows it), output split into documents, sorted in Helm's
//     install order and prefixed with "# Source: <chart>/templates/<file>".
//
// Not implemented (unused by this chart): subcharts and dependencies, library
// charts, .Files.AsConfig/AsSecrets, toToml, --post-renderer, hooks ordering.
//
// Build (GOPATH mode against Debian's packaged sources, no network):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o render ./hack/render
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	sprig "github.com/Masterminds/sprig"
	yaml "gopkg.in/yaml.v2"
)

// ---------------------------------------------------------------- flags

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

type setFlag struct {
	kind  string // "set", "set-string", "set-file"
	value string
}

type setList struct {
	kind string
	all  *[]setFlag
}

func (s setList) String() string { return "" }
func (s setList) Set(v string) error {
	*s.all = append(*s.all, setFlag{kind: s.kind, value: v})
	return nil
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "render: Error: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	var (
		valueFiles  stringList
		sets        []setFlag
		apiVersions stringList
		showOnly    stringList
	)
	releaseName := fs.String("name", "backup-guard", "release name")
	namespace := fs.String("namespace", "backup-guard", "release namespace")
	service := fs.String("release-service", "Helm", "value of .Release.Service")
	kubeVersion := fs.String("kube-version", "v1.30.0", "Kubernetes version for .Capabilities.KubeVersion")
	isUpgrade := fs.Bool("is-upgrade", false, "render as an upgrade (.Release.IsUpgrade)")
	printValues := fs.Bool("print-values", false, "print the coalesced values as JSON and exit")
	printNotes := fs.Bool("notes", false, "print the rendered templates/NOTES.txt (what helm install shows) instead of the manifests")
	noDefaultAPIs := fs.Bool("no-default-api-versions", false, "start .Capabilities.APIVersions empty (then only --api-versions count)")
	fs.Var(&valueFiles, "f", "values file (repeatable; later wins)")
	fs.Var(&valueFiles, "values", "values file (repeatable; later wins)")
	fs.Var(setList{"set", &sets}, "set", "set values: a.b=c,d[0]=e (repeatable)")
	fs.Var(setList{"set-string", &sets}, "set-string", "set STRING values (repeatable)")
	fs.Var(setList{"set-file", &sets}, "set-file", "set values from files: key=path (repeatable)")
	fs.Var(&apiVersions, "api-versions", "extra API versions for .Capabilities.APIVersions (group/version or group/version/Kind; repeatable)")
	fs.Var(&apiVersions, "a", "short for --api-versions")
	fs.Var(&showOnly, "show-only", "only emit these templates (e.g. templates/deployment.yaml; repeatable)")
	lookupFile := fs.String("lookup-objects", "", "YAML/JSON objects (e.g. kubectl get -o yaml) that lookup finds, as if they were in the cluster")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: render [flags] CHART_DIR\n")
		fs.PrintDefaults()
	}
	// Go's flag package stops at the first positional argument; Helm does
	// not, so move the chart directory to the end.
	var positional []string
	var flagArgs []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			flagArgs = append(flagArgs, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && !isBoolFlag(name) && i+1 < len(args) {
				flagArgs = append(flagArgs, args[i+1])
				i++
			}
			continue
		}
		positional = append(positional, a)
	}
	if err := fs.Parse(flagArgs); err != nil {
		return err
	}
	if len(positional) != 1 {
		fs.Usage()
		return errors.New("exactly one chart directory is required")
	}
	chartDir := positional[0]

	ch, err := loadChart(chartDir)
	if err != nil {
		return err
	}
	user := map[string]interface{}{}
	for _, f := range valueFiles {
		b, err := ioutil.ReadFile(f)
		if err != nil {
			return fmt.Errorf("reading values file: %w", err)
		}
		m, err := readValues(b)
		if err != nil {
			return fmt.Errorf("parsing %s: %w", f, err)
		}
		user = mergeMaps(user, m)
	}
	for _, s := range sets {
		if err := applySet(user, s); err != nil {
			return fmt.Errorf("failed parsing --%s data %q: %w", s.kind, s.value, err)
		}
	}
	vals := coalesce(deepCopy(user).(map[string]interface{}), ch.values)
	if *printValues {
		b, err := json.MarshalIndent(vals, "", "  ")
		if err != nil {
			return err
		}
		fmt.Println(string(b))
		return nil
	}

	caps, err := newCapabilities(*kubeVersion, apiVersions, !*noDefaultAPIs)
	if err != nil {
		return err
	}
	top := map[string]interface{}{
		"Values": vals,
		"Release": map[string]interface{}{
			"Name":      *releaseName,
			"Namespace": *namespace,
			"IsUpgrade": *isUpgrade,
			"IsInstall": !*isUpgrade,
			"Revision":  1,
			"Service":   *service,
		},
		"Chart":        ch.meta,
		"Capabilities": caps,
		"Files":        ch.files,
	}
	if *lookupFile != "" {
		b, err := ioutil.ReadFile(*lookupFile)
		if err != nil {
			return fmt.Errorf("reading --lookup-objects: %w", err)
		}
		if lookupObjects, err = readObjects(b); err != nil {
			return fmt.Errorf("parsing --lookup-objects: %w", err)
		}
	}
	rendered, err := render(ch, top)
	if err != nil {
		return err
	}
	if *printNotes {
		for _, f := range rendered {
			if f.notes {
				fmt.Print(f.content)
			}
		}
		return nil
	}
	return emit(os.Stdout, ch, rendered, showOnly)
}

func isBoolFlag(name string) bool {
	switch name {
	case "is-upgrade", "print-values", "notes", "no-default-api-versions", "h", "help":
		return true
	}
	return false
}

// ---------------------------------------------------------------- chart

// Metadata mirrors the fields of Helm's chart.Metadata the templates may read.
type Metadata struct {
	APIVersion   string            `json:"apiVersion"`
	Name         string            `json:"name"`
	Version      string            `json:"version"`
	AppVersion   string            `json:"appVersion"`
	Description  string            `json:"description"`
	Type         string            `json:"type"`
	KubeVersion  string            `json:"kubeVersion"`
	Home         string            `json:"home"`
	Icon         string            `json:"icon"`
	Sources      []string          `json:"sources"`
	Keywords     []string          `json:"keywords"`
	Annotations  map[string]string `json:"annotations"`
	Deprecated   bool              `json:"deprecated"`
	Dependencies []interface{}     `json:"dependencies"`
}

type chart struct {
	dir       string
	meta      *Metadata
	values    map[string]interface{}
	templates map[string]string // "name/templates/x.yaml" -> text
	files     Files
}

func loadChart(dir string) (*chart, error) {
	b, err := ioutil.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, fmt.Errorf("not a chart directory: %w", err)
	}
	var meta Metadata
	if err := yamlToJSONInto(b, &meta); err != nil {
		return nil, fmt.Errorf("Chart.yaml: %w", err)
	}
	if meta.Name == "" || meta.Version == "" {
		return nil, errors.New("Chart.yaml: name and version are required")
	}
	if meta.APIVersion != "v2" {
		return nil, errors.New("Chart.yaml: only apiVersion v2 charts are supported")
	}
	if len(meta.Dependencies) > 0 {
		return nil, errors.New("Chart.yaml: dependencies are not supported by this renderer")
	}
	c := &chart{dir: dir, meta: &meta, templates: map[string]string{}, files: Files{}}
	if vb, err := ioutil.ReadFile(filepath.Join(dir, "values.yaml")); err == nil {
		if c.values, err = readValues(vb); err != nil {
			return nil, fmt.Errorf("values.yaml: %w", err)
		}
	} else {
		c.values = map[string]interface{}{}
	}
	ignore := loadHelmignore(dir)
	err = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if ignore.ignored(rel, info.IsDir()) {
			if info.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if info.IsDir() {
			if rel == "charts" {
				return errors.New("subcharts (charts/) are not supported by this renderer")
			}
			return nil
		}
		data, err := ioutil.ReadFile(p)
		if err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(rel, "templates/"):
			c.templates[path.Join(meta.Name, rel)] = string(data)
		case rel == "Chart.yaml", rel == "values.yaml", rel == "values.schema.json", rel == "Chart.lock":
		default:
			c.files[rel] = data
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// helmignore implements the common subset of .helmignore: comments, blank
// lines, "dir/" (directories only), globs matched against the base name and
// against the whole relative path, "!" negation.
type helmignore struct{ rules []ignoreRule }

type ignoreRule struct {
	pattern string
	dirOnly bool
	negate  bool
}

func loadHelmignore(dir string) helmignore {
	var h helmignore
	b, err := ioutil.ReadFile(filepath.Join(dir, ".helmignore"))
	if err != nil {
		return h
	}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := ignoreRule{}
		if strings.HasPrefix(line, "!") {
			r.negate = true
			line = line[1:]
		}
		if strings.HasSuffix(line, "/") {
			r.dirOnly = true
			line = strings.TrimSuffix(line, "/")
		}
		r.pattern = strings.TrimPrefix(line, "/")
		h.rules = append(h.rules, r)
	}
	return h
}

func (h helmignore) ignored(rel string, isDir bool) bool {
	if rel == ".helmignore" {
		return true
	}
	out := false
	for _, r := range h.rules {
		if r.dirOnly && !isDir {
			continue
		}
		m1, _ := path.Match(r.pattern, rel)
		m2, _ := path.Match(r.pattern, path.Base(rel))
		if m1 || m2 {
			out = !r.negate
		}
	}
	return out
}

// Files is .Files: the chart's non-template files.
type Files map[string][]byte

// Get returns a file's content as a string ("" when absent, as in Helm).
func (f Files) Get(name string) string { return string(f[name]) }

// GetBytes returns a file's content as bytes.
func (f Files) GetBytes(name string) []byte { return f[name] }

// Lines returns a file's lines.
func (f Files) Lines(name string) []string {
	if f == nil || f[name] == nil {
		return []string{}
	}
	return strings.Split(string(f[name]), "\n")
}

// Glob returns the files whose path matches a glob.
func (f Files) Glob(pattern string) Files {
	out := Files{}
	for k, v := range f {
		if ok, _ := path.Match(pattern, k); ok {
			out[k] = v
		}
	}
	return out
}

// ---------------------------------------------------------------- values

// readValues parses YAML the way Helm does (sigs.k8s.io/yaml): through JSON,
// so every number becomes a float64 and every map a map[string]interface{}.
func readValues(b []byte) (map[string]interface{}, error) {
	m := map[string]interface{}{}
	if err := yamlToJSONInto(b, &m); err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]interface{}{}
	}
	return m, nil
}

func yamlToJSONInto(b []byte, out interface{}) error {
	var raw interface{}
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return err
	}
	conv, err := toJSONCompatible(raw)
	if err != nil {
		return err
	}
	j, err := json.Marshal(conv)
	if err != nil {
		return err
	}
	return json.Unmarshal(j, out)
}

func toJSONCompatible(v interface{}) (interface{}, error) {
	switch t := v.(type) {
	case map[interface{}]interface{}:
		m := make(map[string]interface{}, len(t))
		for k, val := range t {
			var ks string
			switch kk := k.(type) {
			case string:
				ks = kk
			case int, int64, float64, bool:
				ks = fmt.Sprint(kk)
			default:
				return nil, fmt.Errorf("unsupported map key %v", k)
			}
			c, err := toJSONCompatible(val)
			if err != nil {
				return nil, err
			}
			m[ks] = c
		}
		return m, nil
	case []interface{}:
		out := make([]interface{}, len(t))
		for i, val := range t {
			c, err := toJSONCompatible(val)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	default:
		return v, nil
	}
}

func deepCopy(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		m := make(map[string]interface{}, len(t))
		for k, val := range t {
			m[k] = deepCopy(val)
		}
		return m
	case []interface{}:
		out := make([]interface{}, len(t))
		for i, val := range t {
			out[i] = deepCopy(val)
		}
		return out
	default:
		return v
	}
}

// mergeMaps merges b into a (b wins), recursing into maps; used to stack -f
// files, as Helm's mergeMaps does.
func mergeMaps(a, b map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if vm, ok := v.(map[string]interface{}); ok {
			if om, ok := out[k].(map[string]interface{}); ok {
				out[k] = mergeMaps(om, vm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// coalesce fills dst (user values) from src (chart defaults) like Helm's
// chartutil.CoalesceTables: user values win, maps merge recursively, and a
// user value of null deletes the key.
func coalesce(dst, src map[string]interface{}) map[string]interface{} {
	for k, sv := range src {
		dv, present := dst[k]
		if !present {
			dst[k] = deepCopy(sv)
			continue
		}
		if dv == nil {
			delete(dst, k)
			continue
		}
		dm, dok := dv.(map[string]interface{})
		sm, sok := sv.(map[string]interface{})
		if dok && sok {
			dst[k] = coalesce(dm, sm)
		} else if dok != sok && sv != nil {
			fmt.Fprintf(os.Stderr, "render: warning: cannot overwrite table with non table for %s (%v)\n", k, sv)
		}
	}
	for k, v := range dst {
		if v == nil {
			delete(dst, k)
		}
	}
	return dst
}

// applySet implements the part of Helm's strvals parser we need:
// comma-separated key=value pairs, dotted keys, list indexes key[0], {a,b}
// lists, backslash escapes for ",", "." and "=". --set types values like
// Helm (true/false/null/integers), --set-string never does, --set-file reads
// the file.
func applySet(dst map[string]interface{}, s setFlag) error {
	for _, pair := range splitUnescaped(s.value, ',', true) {
		if pair == "" {
			continue
		}
		kv := splitUnescaped(pair, '=', false)
		if len(kv) < 2 {
			return fmt.Errorf("key %q has no value", pair)
		}
		key := kv[0]
		raw := strings.Join(kv[1:], "=")
		var val interface{}
		switch s.kind {
		case "set":
			val = typedValue(unescape(raw))
		case "set-string":
			val = unescape(raw)
		case "set-file":
			b, err := ioutil.ReadFile(unescape(raw))
			if err != nil {
				return err
			}
			val = string(b)
		}
		if s.kind != "set-file" && strings.HasPrefix(raw, "{") && strings.HasSuffix(raw, "}") {
			var list []interface{}
			inner := raw[1 : len(raw)-1]
			if inner != "" {
				for _, item := range splitUnescaped(inner, ',', false) {
					if s.kind == "set" {
						list = append(list, typedValue(unescape(item)))
					} else {
						list = append(list, unescape(item))
					}
				}
			}
			if list == nil {
				list = []interface{}{}
			}
			val = list
		}
		if err := setPath(dst, splitUnescaped(key, '.', false), val); err != nil {
			return err
		}
	}
	return nil
}

// splitUnescaped splits on sep unless escaped by a backslash; with braces, a
// sep inside {...} does not split (for list values).
func splitUnescaped(s string, sep byte, braces bool) []string {
	var out []string
	var cur strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			cur.WriteByte(c)
			cur.WriteByte(s[i+1])
			i++
			continue
		}
		if braces {
			if c == '{' {
				depth++
			} else if c == '}' && depth > 0 {
				depth--
			}
		}
		if c == sep && depth == 0 {
			out = append(out, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	out = append(out, cur.String())
	return out
}

func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			b.WriteByte(s[i+1])
			i++
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func typedValue(v string) interface{} {
	switch {
	case strings.EqualFold(v, "true"):
		return true
	case strings.EqualFold(v, "false"):
		return false
	case strings.EqualFold(v, "null"):
		return nil
	case v == "0":
		return int64(0)
	}
	if len(v) > 0 && v[0] != '0' {
		if i, err := strconv.ParseInt(v, 10, 64); err == nil {
			return i
		}
	}
	return v
}

var indexRe = regexp.MustCompile(`^(.*)\[(\d+)\]$`)

func setPath(m map[string]interface{}, keys []string, val interface{}) error {
	k := unescape(keys[0])
	last := len(keys) == 1
	if mm := indexRe.FindStringSubmatch(keys[0]); mm != nil {
		name := unescape(mm[1])
		idx, _ := strconv.Atoi(mm[2])
		if idx > 65536 {
			return fmt.Errorf("index of %s too large", name)
		}
		list, _ := m[name].([]interface{})
		for len(list) <= idx {
			list = append(list, nil)
		}
		if last {
			list[idx] = val
		} else {
			child, ok := list[idx].(map[string]interface{})
			if !ok {
				child = map[string]interface{}{}
			}
			if err := setPath(child, keys[1:], val); err != nil {
				return err
			}
			list[idx] = child
		}
		m[name] = list
		return nil
	}
	if last {
		m[k] = val
		return nil
	}
	child, ok := m[k].(map[string]interface{})
	if !ok {
		child = map[string]interface{}{}
	}
	if err := setPath(child, keys[1:], val); err != nil {
		return err
	}
	m[k] = child
	return nil
}

// ---------------------------------------------------------------- lookup

// lookupObjects is what lookup finds: nothing by default (offline, like
// `helm template`), or the objects given with --lookup-objects (to render an
// upgrade as `helm upgrade` would see the cluster).
var lookupObjects []map[string]interface{}

// lookup is Helm's: the object as a map, an empty map when absent; with an
// empty name, a List of the matching objects.
func lookup(apiVersion, kind, namespace, name string) (map[string]interface{}, error) {
	var items []interface{}
	for _, o := range lookupObjects {
		md, _ := o["metadata"].(map[string]interface{})
		ns, _ := md["namespace"].(string)
		n, _ := md["name"].(string)
		if o["apiVersion"] != apiVersion || o["kind"] != kind || ns != namespace {
			continue
		}
		if name == "" {
			items = append(items, deepCopy(o))
		} else if n == name {
			return deepCopy(o).(map[string]interface{}), nil
		}
	}
	if name == "" {
		return map[string]interface{}{"apiVersion": "v1", "kind": kind + "List", "items": items}, nil
	}
	return map[string]interface{}{}, nil
}

// readObjects reads a YAML/JSON stream of objects, unrolling Lists.
func readObjects(b []byte) ([]map[string]interface{}, error) {
	var out []map[string]interface{}
	for _, doc := range docSep.Split(string(b), -1) {
		if strings.TrimSpace(doc) == "" || onlyComments(strings.TrimSpace(doc)) {
			continue
		}
		m := map[string]interface{}{}
		if err := yamlToJSONInto([]byte(doc), &m); err != nil {
			return nil, err
		}
		if items, ok := m["items"].([]interface{}); ok && strings.HasSuffix(fmt.Sprint(m["kind"]), "List") {
			for _, it := range items {
				if im, ok := it.(map[string]interface{}); ok {
					out = append(out, im)
				}
			}
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

// ---------------------------------------------------------------- capabilities

// Capabilities is .Capabilities.
type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions VersionSet
	HelmVersion map[string]string
}

// KubeVersion is .Capabilities.KubeVersion.
type KubeVersion struct {
	Version string
	Major   string
	Minor   string
}

// String returns the version ("v1.30.0").
func (k KubeVersion) String() string { return k.Version }

// GitVersion returns the version, as Helm's deprecated accessor does.
func (k KubeVersion) GitVersion() string { return k.Version }

// VersionSet is .Capabilities.APIVersions.
type VersionSet []string

// Has reports whether "group/version" or "group/version/Kind" is available.
func (v VersionSet) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

// defaultAPIVersions is what a current cluster (1.25+) serves for the groups
// this chart may ask about; Helm's own default set is similar. Pass
// --no-default-api-versions plus the output of `kubectl api-versions` to
// render for a real cluster, as `helm install` does through discovery.
var defaultAPIVersions = []string{
	"v1",
	"admissionregistration.k8s.io/v1",
	"apiextensions.k8s.io/v1",
	"apps/v1",
	"coordination.k8s.io/v1",
	"events.k8s.io/v1",
	"networking.k8s.io/v1",
	"policy/v1",
	"policy/v1/PodDisruptionBudget",
	"rbac.authorization.k8s.io/v1",
	"scheduling.k8s.io/v1",
}

func newCapabilities(kv string, extra []string, defaults bool) (*Capabilities, error) {
	re := regexp.MustCompile(`^v?(\d+)\.(\d+)(\.\d+)?(-.*)?$`)
	m := re.FindStringSubmatch(kv)
	if m == nil {
		return nil, fmt.Errorf("invalid --kube-version %q", kv)
	}
	if !strings.HasPrefix(kv, "v") {
		kv = "v" + kv
	}
	var set VersionSet
	if defaults {
		minor, _ := strconv.Atoi(m[2])
		for _, v := range defaultAPIVersions {
			// policy/v1 PodDisruptionBudget arrived in 1.21; 1.20 only has v1beta1.
			if minor < 21 && strings.HasPrefix(v, "policy/v1") {
				continue
			}
			set = append(set, v)
		}
		if minor < 25 {
			set = append(set, "policy/v1beta1", "policy/v1beta1/PodDisruptionBudget")
		}
	}
	for _, e := range extra {
		for _, x := range strings.Split(e, ",") {
			if x = strings.TrimSpace(x); x != "" {
				set = append(set, x)
			}
		}
	}
	return &Capabilities{
		KubeVersion: KubeVersion{Version: kv, Major: m[1], Minor: m[2]},
		APIVersions: set,
		HelmVersion: map[string]string{"Version": "v3-compatible (hack/render)"},
	}, nil
}

// ---------------------------------------------------------------- engine

const recursionMaxNums = 1000

func funcMap(t *template.Template, top map[string]interface{}) template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")

	included := map[string]int{}
	f["include"] = func(name string, data interface{}) (string, error) {
		if included[name] > recursionMaxNums {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
		}
		included[name]++
		defer func() { included[name]-- }()
		var buf strings.Builder
		err := t.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		c, err := t.Clone()
		if err != nil {
			return "", err
		}
		c.Option("missingkey=zero")
		name := "tpl"
		if vals, ok := data.(map[string]interface{}); ok {
			if tm, ok := vals["Template"].(map[string]interface{}); ok {
				if n, ok := tm["Name"].(string); ok {
					name = n
				}
			}
		}
		c = c.New(name)
		c.Funcs(funcMap(c, top))
		if _, err := c.Parse(text); err != nil {
			return "", fmt.Errorf("cannot parse template %q: %w", text, err)
		}
		var buf strings.Builder
		if err := c.Execute(&buf, data); err != nil {
			return "", fmt.Errorf("error during tpl function execution for %q: %w", text, err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	f["required"] = func(msg string, val interface{}) (interface{}, error) {
		if val == nil {
			return val, errors.New(msg)
		}
		if s, ok := val.(string); ok && s == "" {
			return val, errors.New(msg)
		}
		return val, nil
	}
	f["lookup"] = lookup
	f["toYaml"] = toYAML
	f["mustToYaml"] = func(v interface{}) (string, error) { return marshalYAML(v) }
	f["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yamlToJSONInto([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	f["fromYamlArray"] = func(s string) []interface{} {
		a := []interface{}{}
		if err := yamlToJSONInto([]byte(s), &a); err != nil {
			a = []interface{}{err.Error()}
		}
		return a
	}
	f["toJson"] = func(v interface{}) string {
		b, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(b)
	}
	f["fromJson"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	f["fromJsonArray"] = func(s string) []interface{} {
		a := []interface{}{}
		if err := json.Unmarshal([]byte(s), &a); err != nil {
			a = []interface{}{err.Error()}
		}
		return a
	}
	return f
}

// toYAML is Helm's toYaml: sigs.k8s.io/yaml.Marshal (JSON first, so keys are
// sorted and numbers normalised), trailing newline trimmed, "" on error.
func toYAML(v interface{}) string {
	s, err := marshalYAML(v)
	if err != nil {
		return ""
	}
	return s
}

func marshalYAML(v interface{}) (string, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	var obj interface{}
	if err := yaml.Unmarshal(j, &obj); err != nil {
		return "", err
	}
	y, err := yaml.Marshal(obj)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(string(y), "\n"), nil
}

type renderedFile struct {
	name    string
	content string
	notes   bool // the chart's templates/NOTES.txt: rendered, never emitted
}

func render(ch *chart, top map[string]interface{}) ([]renderedFile, error) {
	t := template.New("gotpl")
	t.Option("missingkey=zero")
	t.Funcs(funcMap(t, top))

	names := make([]string, 0, len(ch.templates))
	for n := range ch.templates {
		names = append(names, n)
	}
	// Helm parses deeper paths first, then by name; definitions in files
	// parsed later win.
	sort.Slice(names, func(i, j int) bool {
		di, dj := strings.Count(names[i], "/"), strings.Count(names[j], "/")
		if di != dj {
			return di > dj
		}
		return names[i] < names[j]
	})
	for _, n := range names {
		if _, err := t.New(n).Parse(ch.templates[n]); err != nil {
			return nil, fmt.Errorf("parse error in %q: %w", n, err)
		}
	}
	sort.Strings(names)
	var out []renderedFile
	for _, n := range names {
		base := path.Base(n)
		if strings.HasPrefix(base, "_") {
			continue
		}
		top["Template"] = map[string]interface{}{
			"Name":     n,
			"BasePath": path.Join(ch.meta.Name, "templates"),
		}
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, n, top); err != nil {
			return nil, err
		}
		notes := strings.EqualFold(base, "NOTES.txt")
		out = append(out, renderedFile{name: n, content: strings.ReplaceAll(buf.String(), "<no value>", ""), notes: notes})
	}
	return out, nil
}

// ---------------------------------------------------------------- output

// installOrder is Helm's releaseutil.InstallOrder.
var installOrder = []string{
	"PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange",
	"PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret",
	"SecretList", "ConfigMap", "StorageClass", "PersistentVolume",
	"PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
	"ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role",
	"RoleList", "RoleBinding", "RoleBindingList", "Service", "DaemonSet", "Pod",
	"ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler",
	"StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService",
}

var docSep = regexp.MustCompile(`(?:^|\s*\n)---\s*`)

type manifest struct {
	source  string
	kind    string
	content string
	seq     int
}

func emit(w io.Writer, ch *chart, files []renderedFile, showOnly []string) error {
	want := map[string]bool{}
	for _, s := range showOnly {
		want[path.Join(ch.meta.Name, filepath.ToSlash(s))] = true
	}
	var all []manifest
	seq := 0
	for _, f := range files {
		if f.notes || (len(want) > 0 && !want[f.name]) {
			continue
		}
		for _, d := range docSep.Split(strings.TrimSpace(f.content), -1) {
			d = strings.TrimSpace(d)
			if d == "" || onlyComments(d) {
				continue
			}
			var head struct {
				Kind     string `yaml:"kind"`
				Metadata struct {
					Name string `yaml:"name"`
				} `yaml:"metadata"`
			}
			if err := yaml.Unmarshal([]byte(d), &head); err != nil {
				return fmt.Errorf("YAML parse error on %s: %w\n---\n%s", f.name, err, d)
			}
			if head.Kind == "" {
				return fmt.Errorf("%s: a document has no kind:\n%s", f.name, d)
			}
			all = append(all, manifest{source: f.name, kind: head.Kind, content: d, seq: seq})
			seq++
		}
	}
	if len(want) > 0 && len(all) == 0 {
		return fmt.Errorf("could not find template(s) %v in chart (or they rendered empty)", showOnly)
	}
	rank := map[string]int{}
	for i, k := range installOrder {
		rank[k] = i
	}
	sort.SliceStable(all, func(i, j int) bool {
		ri, iok := rank[all[i].kind]
		rj, jok := rank[all[j].kind]
		switch {
		case iok && jok:
			return ri < rj
		case iok:
			return true
		case jok:
			return false
		default:
			return all[i].kind < all[j].kind
		}
	})
	var b strings.Builder
	for _, m := range all {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.source, m.content)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func onlyComments(d string) bool {
	for _, l := range strings.Split(d, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}
