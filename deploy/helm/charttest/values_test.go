package charttest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	yamlv3 "go.yaml.in/yaml/v3"
)

// TestValuesDocumented requires a comment above every key of values.yaml,
// nested ones included, so that the file documents every option.
func TestValuesDocumented(t *testing.T) {
	path := filepath.Join(chartDir, "values.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yamlv3.MappingNode {
		t.Fatalf("%s: want one mapping", path)
	}
	var undocumented []string
	var walk func(prefix string, m *yamlv3.Node)
	walk = func(prefix string, m *yamlv3.Node) {
		for i := 0; i+1 < len(m.Content); i += 2 {
			key, value := m.Content[i], m.Content[i+1]
			name := prefix + key.Value
			if strings.TrimSpace(key.HeadComment) == "" {
				undocumented = append(undocumented, name)
			}
			if value.Kind == yamlv3.MappingNode && len(value.Content) > 0 && !isDocumentedBlock(key.HeadComment) {
				walk(name+".", value)
			}
		}
	}
	walk("", doc.Content[0])
	if len(undocumented) > 0 {
		t.Errorf("%s: keys without a comment above them: %s", path, strings.Join(undocumented, ", "))
	}
}

// isDocumentedBlock reports whether a key's comment ("# -- ...") documents
// its whole value, which is then a Kubernetes object (a security context,
// resources, a probe) rather than chart options.
func isDocumentedBlock(comment string) bool {
	return strings.HasPrefix(strings.TrimSpace(comment), "# --")
}
