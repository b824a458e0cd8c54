// Package charttest checks the blipflow Helm chart without a cluster or a
// helm binary: it lints and renders the chart with the Helm library and
// decodes every rendered manifest strictly into its Kubernetes API type, so
// that a misspelt field or a value of the wrong type fails the build.
package charttest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Release names the release a chart is rendered for.
type Release struct {
	Name      string
	Namespace string
}

// Object is one rendered manifest decoded into its API type.
type Object struct {
	// Template is the chart file that rendered it ("blipflow/templates/worker.yaml").
	Template string
	// APIVersion and Kind identify its type.
	APIVersion, Kind string
	// Name is metadata.name.
	Name string
	// Value points to the decoded object: *appsv1.Deployment,
	// *corev1.Service, *ScaledObject and so on (see NewAPIObject).
	Value any
}

// Rendered is the output of a chart for one set of values.
type Rendered struct {
	// Objects are the manifests, in template then document order.
	Objects []Object
	// Notes is the rendered NOTES.txt.
	Notes string
}

// Lint runs the Helm linter (chart file, values, templates) on the chart
// folder with values merged over the chart's own and returns all its
// findings. The error is non-nil when any finding is an error
// (support.ErrorSev).
func Lint(chartDir string, values map[string]any, namespace string) ([]support.Message, error) {
	linter := lint.All(chartDir, values, namespace, false)
	var errs []error
	for _, m := range linter.Messages {
		if m.Severity >= support.ErrorSev {
			errs = append(errs, m)
		}
	}
	return linter.Messages, errors.Join(errs...)
}

// Render loads the chart folder, renders it as a fresh install of rel with
// values merged over the chart's defaults, and strictly decodes every
// manifest (see Decode).
func Render(chartDir string, values map[string]any, rel Release) (Rendered, error) {
	chrt, err := loader.Load(chartDir)
	if err != nil {
		return Rendered{}, fmt.Errorf("load chart %s: %w", chartDir, err)
	}
	opts := chartutil.ReleaseOptions{Name: rel.Name, Namespace: rel.Namespace, Revision: 1, IsInstall: true}
	renderValues, err := chartutil.ToRenderValues(chrt, values, opts, chartutil.DefaultCapabilities)
	if err != nil {
		return Rendered{}, fmt.Errorf("values of chart %s: %w", chartDir, err)
	}
	files, err := engine.Render(chrt, renderValues)
	if err != nil {
		return Rendered{}, fmt.Errorf("render chart %s: %w", chartDir, err)
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	var out Rendered
	for _, name := range names {
		switch {
		case path.Base(name) == "NOTES.txt":
			out.Notes = files[name]
			continue
		case !strings.HasSuffix(name, ".yaml"):
			continue
		}
		for i, doc := range splitDocuments(files[name]) {
			obj, err := Decode(name, doc)
			if err != nil {
				return Rendered{}, fmt.Errorf("%s document %d: %w", name, i+1, err)
			}
			out.Objects = append(out.Objects, obj)
		}
	}
	return out, nil
}

// documentSeparator matches a YAML "---" line.
var documentSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// splitDocuments returns the non-empty YAML documents of a rendered file.
func splitDocuments(file string) []string {
	var docs []string
	for _, doc := range documentSeparator.Split(file, -1) {
		if strings.TrimSpace(stripComments(doc)) != "" {
			docs = append(docs, doc)
		}
	}
	return docs
}

// stripComments drops whole-line YAML comments.
func stripComments(doc string) string {
	lines := strings.Split(doc, "\n")
	kept := lines[:0]
	for _, line := range lines {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "\n")
}

// Decode reads one manifest's apiVersion and kind and decodes it strictly
// into the type NewAPIObject gives for them (see decodeStrict).
func Decode(template, doc string) (Object, error) {
	var head struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
		return Object{}, fmt.Errorf("read apiVersion and kind: %w", err)
	}
	value, err := NewAPIObject(head.APIVersion, head.Kind)
	if err != nil {
		return Object{}, fmt.Errorf("object %q: %w", head.Metadata.Name, err)
	}
	if err := decodeStrict(doc, value); err != nil {
		return Object{}, fmt.Errorf("%s %s %q: %w", head.APIVersion, head.Kind, head.Metadata.Name, err)
	}
	if head.Metadata.Name == "" {
		return Object{}, fmt.Errorf("%s %s without metadata.name", head.APIVersion, head.Kind)
	}
	return Object{Template: template, APIVersion: head.APIVersion, Kind: head.Kind, Name: head.Metadata.Name, Value: value}, nil
}

// NewAPIObject returns a pointer to a zero value of the Go type of
// apiVersion/kind, for the kinds the chart renders; any other kind is an
// error, so a new template must name its type here.
func NewAPIObject(apiVersion, kind string) (any, error) {
	switch apiVersion + "/" + kind {
	case "v1/Service":
		return &corev1.Service{}, nil
	case "v1/Secret":
		return &corev1.Secret{}, nil
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "v1/PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}, nil
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, nil
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "batch/v1/Job":
		return &batchv1.Job{}, nil
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "keda.sh/v1alpha1/ScaledObject":
		return &ScaledObject{}, nil
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &ServiceMonitor{}, nil
	}
	return nil, fmt.Errorf("no Go type for apiVersion %q kind %q", apiVersion, kind)
}

// decodeStrict decodes a YAML document into value the way the API server
// reads what Helm sends: the YAML becomes JSON with no knowledge of the
// target type (so 8 stays a number where a string is wanted, unlike
// yaml.UnmarshalStrict, which would convert it), and then JSON decoding
// rejects unknown fields and mistyped values. Duplicate keys are errors too.
func decodeStrict(doc string, value any) error {
	data, err := yaml.YAMLToJSONStrict([]byte(doc))
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(value); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}
