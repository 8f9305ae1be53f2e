package main

import (
	"bytes"
	"io/ioutil"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSetTypesValuesLikeHelm(t *testing.T) {
	m := map[string]interface{}{}
	if err := applySet(m, setFlag{"set", "a=true,b=12,c=012,d=null,e=x\\,y,f.g=0"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]interface{}{
		"a": true, "b": int64(12), "c": "012", "d": nil, "e": "x,y",
		"f": map[string]interface{}{"g": int64(0)},
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %#v\nwant %#v", m, want)
	}
}

func TestSetStringNeverTypes(t *testing.T) {
	m := map[string]interface{}{}
	if err := applySet(m, setFlag{"set-string", "a=true,b=12"}); err != nil {
		t.Fatal(err)
	}
	if m["a"] != "true" || m["b"] != "12" {
		t.Fatalf("got %#v", m)
	}
}

func TestSetListsAndIndexes(t *testing.T) {
	m := map[string]interface{}{}
	if err := applySet(m, setFlag{"set", "l={a,b,3},x[1].y=z"}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m["l"], []interface{}{"a", "b", int64(3)}) {
		t.Fatalf("list: %#v", m["l"])
	}
	x := m["x"].([]interface{})
	if len(x) != 2 || x[0] != nil || !reflect.DeepEqual(x[1], map[string]interface{}{"y": "z"}) {
		t.Fatalf("index: %#v", x)
	}
}

func TestUserNullDeletesADefault(t *testing.T) {
	defaults, _ := readValues([]byte("a: 1\nb: {c: 2, d: 3}\n"))
	user := map[string]interface{}{"a": nil, "b": map[string]interface{}{"c": nil}}
	got := coalesce(user, defaults)
	want := map[string]interface{}{"b": map[string]interface{}{"d": float64(3)}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v want %#v", got, want)
	}
}

func TestValuesNumbersAreFloat64AsInHelm(t *testing.T) {
	v, err := readValues([]byte("num: 2\nbig: 1000000\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := v["num"].(float64); !ok {
		t.Fatalf("num is %T", v["num"])
	}
}

func TestToYamlMatchesHelm(t *testing.T) {
	v, _ := readValues([]byte("b: [1, x]\na: {d: 2.5, c: 'off', e: ''}\n"))
	got := toYAML(v)
	want := "a:\n  c: \"off\"\n  d: 2.5\n  e: \"\"\nb:\n- 1\n- x"
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func writeChart(t *testing.T, files map[string]string) string {
	t.Helper()
	dir, err := ioutil.TempDir("", "render-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := ioutil.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func renderDir(t *testing.T, dir string, kube string, apis []string) (string, error) {
	t.Helper()
	ch, err := loadChart(dir)
	if err != nil {
		return "", err
	}
	caps, err := newCapabilities(kube, apis, true)
	if err != nil {
		return "", err
	}
	top := map[string]interface{}{
		"Values":       coalesce(map[string]interface{}{}, ch.values),
		"Release":      map[string]interface{}{"Name": "rel", "Namespace": "ns", "IsInstall": true, "IsUpgrade": false, "Service": "Helm"},
		"Chart":        ch.meta,
		"Capabilities": caps,
		"Files":        ch.files,
	}
	files, err := render(ch, top)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	err = emit(&b, ch, files, nil)
	return b.String(), err
}

var testChart = map[string]string{
	"Chart.yaml":  "apiVersion: v2\nname: demo\nversion: 1.2.3\nappVersion: \"9\"\n",
	"values.yaml": "name: world\ntplValue: \"hello {{ .Values.name }}\"\nreplicas: 2\n",
	"files/a.txt": "file-content",
	".helmignore": "ignored.txt\n",
	"ignored.txt": "nope",
	"templates/_helpers.tpl": `{{- define "demo.name" -}}{{ .Chart.Name }}-{{ .Values.name }}{{- end }}`,
	"templates/NOTES.txt":    "notes are not emitted",
	"templates/cm.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "demo.name" . }}
  namespace: {{ .Release.Namespace }}
data:
  tpl: {{ tpl .Values.tplValue . | quote }}
  missing: "{{ .Values.nothing }}"
  file: {{ .Files.Get "files/a.txt" | quote }}
  ignored: {{ .Files.Get "ignored.txt" | quote }}
  lookup: {{ lookup "v1" "Secret" "ns" "x" | len | quote }}
  pdb: {{ if .Capabilities.APIVersions.Has "policy/v1/PodDisruptionBudget" }}v1{{ else }}v1beta1{{ end }}
  replicas: "{{ .Values.replicas }}"
  template: {{ .Template.Name }}
  version: {{ .Capabilities.KubeVersion.Version }}
---
apiVersion: v1
kind: Namespace
metadata:
  name: first
`,
}

func TestRendersHelmFeatures(t *testing.T) {
	out, err := renderDir(t, writeChart(t, testChart), "v1.30.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"name: demo-world",
		`tpl: "hello world"`,
		`missing: ""`,
		`file: "file-content"`,
		`ignored: ""`,
		`lookup: "0"`,
		"pdb: v1\n",
		`replicas: "2"`,
		"template: demo/templates/cm.yaml",
		"version: v1.30.0",
		"# Source: demo/templates/cm.yaml",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "notes are not emitted") {
		t.Error("NOTES.txt was emitted")
	}
	// Helm's install order: Namespace before ConfigMap.
	if strings.Index(out, "kind: Namespace") > strings.Index(out, "kind: ConfigMap") {
		t.Errorf("kinds not in install order:\n%s", out)
	}
}

func TestNotesAreRenderedButNotEmitted(t *testing.T) {
	c := map[string]string{}
	for k, v := range testChart {
		c[k] = v
	}
	c["templates/NOTES.txt"] = "installed {{ .Release.Name }} in {{ .Release.Namespace }}"
	dir := writeChart(t, c)
	ch, err := loadChart(dir)
	if err != nil {
		t.Fatal(err)
	}
	caps, _ := newCapabilities("v1.30.0", nil, true)
	top := map[string]interface{}{
		"Values":       coalesce(map[string]interface{}{}, ch.values),
		"Release":      map[string]interface{}{"Name": "rel", "Namespace": "ns"},
		"Chart":        ch.meta,
		"Capabilities": caps,
		"Files":        ch.files,
	}
	files, err := render(ch, top)
	if err != nil {
		t.Fatal(err)
	}
	var notes []string
	for _, f := range files {
		if f.notes {
			notes = append(notes, f.content)
		}
	}
	if len(notes) != 1 || notes[0] != "installed rel in ns" {
		t.Errorf("NOTES.txt rendered as %q", notes)
	}
	var b bytes.Buffer
	if err := emit(&b, ch, files, nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "installed rel") {
		t.Error("NOTES.txt was emitted with the manifests")
	}
	// An error in NOTES.txt fails the render, as it fails helm install.
	c["templates/NOTES.txt"] = `{{ fail "bad notes" }}`
	if _, err := renderDir(t, writeChart(t, c), "v1.30.0", nil); err == nil || !strings.Contains(err.Error(), "bad notes") {
		t.Fatalf("want the NOTES.txt failure, got %v", err)
	}
}

func TestOldKubernetesHasNoPolicyV1(t *testing.T) {
	out, err := renderDir(t, writeChart(t, testChart), "v1.20.2", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "pdb: v1beta1") {
		t.Errorf("1.20 should only have policy/v1beta1:\n%s", out)
	}
}

func TestRequiredFailsTheRender(t *testing.T) {
	c := map[string]string{}
	for k, v := range testChart {
		c[k] = v
	}
	c["templates/req.yaml"] = `{{ required "x is required" .Values.x }}`
	_, err := renderDir(t, writeChart(t, c), "v1.30.0", nil)
	if err == nil || !strings.Contains(err.Error(), "x is required") {
		t.Fatalf("want the required message, got %v", err)
	}
}

func TestFailFailsTheRender(t *testing.T) {
	c := map[string]string{}
	for k, v := range testChart {
		c[k] = v
	}
	c["templates/fail.yaml"] = `{{ fail "stop here" }}`
	_, err := renderDir(t, writeChart(t, c), "v1.30.0", nil)
	if err == nil || !strings.Contains(err.Error(), "stop here") {
		t.Fatalf("want the fail message, got %v", err)
	}
}

func TestEnvFunctionsAreRemovedAsInHelm(t *testing.T) {
	c := map[string]string{}
	for k, v := range testChart {
		c[k] = v
	}
	c["templates/env.yaml"] = `{{ env "HOME" }}`
	dir := writeChart(t, c)
	if _, err := renderDir(t, dir, "v1.30.0", nil); err == nil {
		t.Fatal("env must not be available")
	}
}

func TestLookupFindsGivenObjects(t *testing.T) {
	objs, err := readObjects([]byte("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: s, namespace: ns}\n  data: {key: YQ==}\n"))
	if err != nil {
		t.Fatal(err)
	}
	lookupObjects = objs
	defer func() { lookupObjects = nil }()
	got, _ := lookup("v1", "Secret", "ns", "s")
	if got["data"].(map[string]interface{})["key"] != "YQ==" {
		t.Fatalf("got %#v", got)
	}
	if miss, _ := lookup("v1", "Secret", "other", "s"); len(miss) != 0 {
		t.Fatalf("another namespace must not match: %#v", miss)
	}
	list, _ := lookup("v1", "Secret", "ns", "")
	if len(list["items"].([]interface{})) != 1 {
		t.Fatalf("list: %#v", list)
	}
}
