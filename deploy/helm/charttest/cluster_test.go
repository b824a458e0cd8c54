package charttest

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"

	"helm.sh/helm/v3/pkg/chartutil"
)

// TestProductionValuesRunNATSCluster renders the chart's own
// values-production.yaml: three NATS servers routed to each other through
// the headless Service, spread over nodes and covered by a disruption
// budget, and blipflow containers that get every server and replicate
// their streams three times.
func TestProductionValuesRunNATSCluster(t *testing.T) {
	vals, err := chartutil.ReadValuesFile(filepath.Join(chartDir, "values-production.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if errs, err := Lint(chartDir, vals, testRelease.Namespace); err != nil {
		t.Fatalf("lint with production values: %v %v", err, errs)
	}
	r, err := Render(chartDir, vals, testRelease)
	if err != nil {
		t.Fatal(err)
	}
	sts := only[appsv1.StatefulSet](t, r)
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 3 {
		t.Fatalf("nats replicas %v, want 3", sts.Spec.Replicas)
	}
	name, headless := "test-blipflow-nats", "test-blipflow-nats-headless"
	if sts.Spec.ServiceName != headless {
		t.Errorf("serviceName %q, want %q", sts.Spec.ServiceName, headless)
	}
	nats := container(t, sts.Spec.Template.Spec, "nats")
	flags := flagValues(nats.Args)
	var routes, clients []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats://%s-%d.%s.batch.svc:6222", name, i, headless))
		clients = append(clients, fmt.Sprintf("nats://%s-%d.%s.batch.svc:4222", name, i, headless))
	}
	if flags["--cluster_name"] != name || flags["--cluster"] != "nats://0.0.0.0:6222" || flags["--routes"] != strings.Join(routes, ",") {
		t.Errorf("nats cluster args %q", nats.Args)
	}
	if !hasContainerPort(nats.Ports, "cluster", 6222) {
		t.Errorf("nats ports %+v: want cluster 6222", nats.Ports)
	}
	for _, svc := range objects[corev1.Service](r) {
		if svc.Name == headless && !hasServicePort(svc.Spec.Ports, "cluster", 6222) {
			t.Errorf("headless service ports %+v: want cluster 6222 for the routes", svc.Spec.Ports)
		}
	}
	aff := sts.Spec.Template.Spec.Affinity
	if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
		t.Error("nats pods are not spread over nodes")
	}
	found := false
	for _, pdb := range objects[policyv1.PodDisruptionBudget](r) {
		if pdb.Name == name {
			found = true
			if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
				t.Errorf("nats disruption budget maxUnavailable %v, want 1", pdb.Spec.MaxUnavailable)
			}
		}
	}
	if !found {
		t.Error("no disruption budget for the nats cluster")
	}
	for _, w := range workloads(r) {
		for _, c := range w.template.Spec.Containers {
			if c.Name != "worker" && c.Name != "coordinator" {
				continue
			}
			if e, _ := envVar(c, "NATS_URL"); e.Value != strings.Join(clients, ",") {
				t.Errorf("%s: NATS_URL %q, want every server", w.id, e.Value)
			}
			if e, _ := envVar(c, "BLIPFLOW_REPLICAS"); e.Value != "3" {
				t.Errorf("%s: BLIPFLOW_REPLICAS %q, want 3", w.id, e.Value)
			}
		}
	}
}

// TestNATSReplicasMustBeOdd refuses cluster sizes without a quorum.
func TestNATSReplicasMustBeOdd(t *testing.T) {
	for _, n := range []int{0, 2, 4} {
		vals := map[string]any{"nats": map[string]any{"replicas": n}}
		if _, err := Render(chartDir, vals, testRelease); err == nil || !strings.Contains(err.Error(), "odd cluster size") {
			t.Errorf("nats.replicas %d: %v, want a refusal", n, err)
		}
	}
}

// TestSingleNATSHasNoCluster keeps the default release a single server
// without routes or a replica setting.
func TestSingleNATSHasNoCluster(t *testing.T) {
	_, r := renderScenario(t, "default.yaml")
	nats := container(t, only[appsv1.StatefulSet](t, r).Spec.Template.Spec, "nats")
	if _, ok := flagValues(nats.Args)["--routes"]; ok {
		t.Errorf("single nats has routes: %q", nats.Args)
	}
	for _, w := range workloads(r) {
		for _, c := range w.template.Spec.Containers {
			if _, ok := envVar(c, "BLIPFLOW_REPLICAS"); ok {
				t.Errorf("%s: BLIPFLOW_REPLICAS set for a single server", w.id)
			}
		}
	}
}

func hasContainerPort(ports []corev1.ContainerPort, name string, port int32) bool {
	for _, p := range ports {
		if p.Name == name && p.ContainerPort == port {
			return true
		}
	}
	return false
}

func hasServicePort(ports []corev1.ServicePort, name string, port int32) bool {
	for _, p := range ports {
		if p.Name == name && p.Port == port {
			return true
		}
	}
	return false
}
