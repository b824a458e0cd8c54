package charttest

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// chartDir is the chart under test, relative to this package.
const chartDir = "../blipflow"

// testRelease is the release every scenario renders as.
var testRelease = Release{Name: "test", Namespace: "batch"}

// scenario is a values file under testdata and what its rendering must hold.
type scenario struct {
	file string
	// kinds counts the objects of each kind; kinds absent must not render.
	kinds map[string]int
	// natsURL is the NATS_URL every blipflow container gets.
	natsURL string
	// s3Secret and hfSecret name the Secrets the credentials come from
	// ("" when the pods get none).
	s3Secret, hfSecret string
	// sessionToken says whether AWS_SESSION_TOKEN is wired.
	sessionToken bool
	// modelClaim is the claim of the model volume ("" for an emptyDir).
	modelClaim string
	// pull says whether a model-pull init container downloads the model.
	pull bool
	// gpus is the worker's GPU limit (0: none); device and maxBatch the
	// --device and --max-batch GPU workers get.
	gpus             int64
	device, maxBatch string
	// jobArgs are flag/value pairs the coordinator Job must pass.
	jobArgs map[string]string
	// monitoringEndpoint is the KEDA trigger's NATS monitoring address.
	monitoringEndpoint string
}

var scenarios = []scenario{
	{
		file:    "default.yaml",
		kinds:   map[string]int{"ServiceAccount": 1, "Service": 4, "StatefulSet": 1, "Deployment": 1},
		natsURL: "nats://test-blipflow-nats.batch.svc:4222",
		pull:    true,
	},
	{
		file: "full.yaml",
		kinds: map[string]int{
			"ServiceAccount": 1, "Secret": 2, "PersistentVolumeClaim": 1, "Service": 4, "StatefulSet": 1,
			"Deployment": 1, "PodDisruptionBudget": 1, "ScaledObject": 1, "Job": 1, "ServiceMonitor": 1,
		},
		natsURL:      "nats://test-blipflow-nats.batch.svc:4222",
		s3Secret:     "test-blipflow-s3",
		hfSecret:     "test-blipflow-huggingface",
		sessionToken: true,
		modelClaim:   "test-blipflow-model",
		pull:         true,
		gpus:         2,
		device:       "cuda:1",
		maxBatch:     "96",
		jobArgs: map[string]string{
			"--input": "s3://datasets/laion/part-00001/", "--output": "s3://results/laion/", "--task": "both",
			"--prompt": "a photo of", "--shard-size": "512", "--job": "laion_part_00001", "--nats": "$(NATS_URL)",
			"--metrics-addr": ":9091", "--ext": "jpg,png", "--max-size": "50000000",
		},
		monitoringEndpoint: "test-blipflow-nats.batch.svc:8222",
	},
	{
		file:         "external.yaml",
		kinds:        map[string]int{"Service": 2, "Deployment": 1, "ScaledObject": 1, "Job": 1},
		natsURL:      "nats://nats.messaging.svc:4222",
		s3Secret:     "team-s3",
		hfSecret:     "team-hf",
		sessionToken: true,
		modelClaim:   "blip2-checkpoints",
		jobArgs: map[string]string{
			"--input": "s3://datasets/cc3m/", "--output": "s3://results/cc3m/", "--task": "embed",
			"--shard-size": "256", "--nats": "$(NATS_URL)",
		},
		monitoringEndpoint: "nats.messaging.svc:8222",
	},
}

// secretEnv are the variables that may only come from a Secret.
var secretEnv = []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "HF_TOKEN"}

func loadValues(t *testing.T, file string) chartutil.Values {
	t.Helper()
	vals, err := chartutil.ReadValuesFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatalf("values %s: %v", file, err)
	}
	return vals
}

func renderScenario(t *testing.T, file string) (chartutil.Values, Rendered) {
	t.Helper()
	vals := loadValues(t, file)
	r, err := Render(chartDir, vals, testRelease)
	if err != nil {
		t.Fatalf("render with %s: %v", file, err)
	}
	return vals, r
}

func TestLint(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.file, func(t *testing.T) {
			msgs, err := Lint(chartDir, loadValues(t, sc.file), testRelease.Namespace)
			for _, m := range msgs {
				t.Log(m.Error())
				if m.Severity >= support.WarningSev {
					t.Errorf("lint finding: %v", m.Error())
				}
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRenderedKinds(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.file, func(t *testing.T) {
			_, r := renderScenario(t, sc.file)
			got := map[string]int{}
			for _, o := range r.Objects {
				got[o.Kind]++
			}
			for kind, n := range sc.kinds {
				if got[kind] != n {
					t.Errorf("%d %s objects, want %d", got[kind], kind, n)
				}
			}
			for kind, n := range got {
				if _, ok := sc.kinds[kind]; !ok {
					t.Errorf("%d unexpected %s objects", n, kind)
				}
			}
			seen := map[string]bool{}
			for _, o := range r.Objects {
				id := o.Kind + "/" + o.Name
				if seen[id] {
					t.Errorf("%s rendered twice", id)
				}
				seen[id] = true
				if len(o.Name) > 63 {
					t.Errorf("%s: name longer than 63 characters", id)
				}
			}
		})
	}
}

// workload is the pod template of a Deployment, StatefulSet or Job.
type workload struct {
	id       string
	template corev1.PodTemplateSpec
}

func workloads(r Rendered) []workload {
	var out []workload
	for _, o := range r.Objects {
		switch v := o.Value.(type) {
		case *appsv1.Deployment:
			out = append(out, workload{"Deployment/" + o.Name, v.Spec.Template})
		case *appsv1.StatefulSet:
			out = append(out, workload{"StatefulSet/" + o.Name, v.Spec.Template})
		case *batchv1.Job:
			out = append(out, workload{"Job/" + o.Name, v.Spec.Template})
		}
	}
	return out
}

// objects returns the rendered objects of type T.
func objects[T any](r Rendered) []*T {
	var out []*T
	for _, o := range r.Objects {
		if v, ok := o.Value.(*T); ok {
			out = append(out, v)
		}
	}
	return out
}

// only returns the one rendered object of type T.
func only[T any](t *testing.T, r Rendered) *T {
	t.Helper()
	all := objects[T](r)
	if len(all) != 1 {
		var zero T
		t.Fatalf("%d objects of type %T, want 1", len(all), zero)
	}
	return all[0]
}

func container(t *testing.T, spec corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range spec.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

func envVar(c corev1.Container, name string) (corev1.EnvVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return corev1.EnvVar{}, false
}

// flagValues maps each "--flag" of args to the argument after it ("--f=v"
// forms map to v).
func flagValues(args []string) map[string]string {
	out := map[string]string{}
	for i, a := range args {
		if !strings.HasPrefix(a, "--") {
			continue
		}
		if name, value, ok := strings.Cut(a, "="); ok {
			out[name] = value
		} else if i+1 < len(args) {
			out[a] = args[i+1]
		}
	}
	return out
}

func TestImagesPinned(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.file, func(t *testing.T) {
			_, r := renderScenario(t, sc.file)
			for _, w := range workloads(r) {
				for _, c := range append(slices.Clone(w.template.Spec.InitContainers), w.template.Spec.Containers...) {
					slash := strings.LastIndex(c.Image, "/")
					colon := strings.LastIndex(c.Image, ":")
					if c.Image == "" || colon <= slash {
						t.Errorf("%s container %s: image %q has no tag", w.id, c.Name, c.Image)
						continue
					}
					if tag := c.Image[colon+1:]; tag == "latest" || tag == "" {
						t.Errorf("%s container %s: image %q is not pinned", w.id, c.Name, c.Image)
					}
				}
			}
		})
	}
}

func TestSecurityContexts(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.file, func(t *testing.T) {
			_, r := renderScenario(t, sc.file)
			for _, w := range workloads(r) {
				spec := w.template.Spec
				pod := spec.SecurityContext
				if pod == nil || pod.RunAsNonRoot == nil || !*pod.RunAsNonRoot {
					t.Errorf("%s: pod securityContext.runAsNonRoot is not true", w.id)
				}
				if pod == nil || pod.RunAsUser == nil || *pod.RunAsUser == 0 {
					t.Errorf("%s: pod securityContext.runAsUser is not a non-root id", w.id)
				}
				if pod == nil || pod.SeccompProfile == nil || pod.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
					t.Errorf("%s: pod seccompProfile is not RuntimeDefault", w.id)
				}
				if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
					t.Errorf("%s: the service account token is mounted", w.id)
				}
				for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
					s := c.SecurityContext
					switch {
					case s == nil:
						t.Errorf("%s container %s: no securityContext", w.id, c.Name)
					case s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation:
						t.Errorf("%s container %s: privilege escalation allowed", w.id, c.Name)
					case s.ReadOnlyRootFilesystem == nil || !*s.ReadOnlyRootFilesystem:
						t.Errorf("%s container %s: root filesystem writable", w.id, c.Name)
					case s.Capabilities == nil || !slices.Equal(s.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(s.Capabilities.Add) > 0:
						t.Errorf("%s container %s: capabilities %+v, want drop [ALL]", w.id, c.Name, s.Capabilities)
					case s.Privileged != nil && *s.Privileged:
						t.Errorf("%s container %s: privileged", w.id, c.Name)
					case s.RunAsUser != nil && *s.RunAsUser == 0:
						t.Errorf("%s container %s: runs as root", w.id, c.Name)
					}
				}
			}
		})
	}
}

func TestResourcesAndProbes(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.file, func(t *testing.T) {
			_, r := renderScenario(t, sc.file)
			for _, w := range workloads(r) {
				spec := w.template.Spec
				for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
					for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
						if q, ok := c.Resources.Requests[res]; !ok || q.IsZero() {
							t.Errorf("%s container %s: no %s request", w.id, c.Name, res)
						}
					}
					if q, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok || q.IsZero() {
						t.Errorf("%s container %s: no memory limit", w.id, c.Name)
					}
				}
				for _, c := range spec.Containers {
					probes := map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe}
					if c.StartupProbe != nil {
						probes["startup"] = c.StartupProbe
					}
					for kind, p := range probes {
						if p == nil || p.HTTPGet == nil {
							t.Errorf("%s container %s: no HTTP %s probe", w.id, c.Name, kind)
							continue
						}
						if !hasPort(c, p.HTTPGet.Port.String()) {
							t.Errorf("%s container %s: %s probe port %s is not a container port", w.id, c.Name, kind, p.HTTPGet.Port.String())
						}
					}
				}
			}
		})
	}
}

func hasPort(c corev1.Container, port string) bool {
	for _, p := range c.Ports {
		if p.Name == port || strconv.Itoa(int(p.ContainerPort)) == port {
			return true
		}
	}
	return false
}

func TestBlipflowProbesUseMetricsEndpoints(t *testing.T) {
	_, r := renderScenario(t, "default.yaml")
	for _, w := range workloads(r) {
		for _, c := range w.template.Spec.Containers {
			if c.Name != "worker" && c.Name != "coordinator" {
				continue
			}
			if got := c.LivenessProbe.HTTPGet.Path; got != "/healthz" {
				t.Errorf("%s: liveness path %q, want /healthz", w.id, got)
			}
			if got := c.ReadinessProbe.HTTPGet.Path; got != "/readyz" {
				t.Errorf("%s: readiness path %q, want /readyz", w.id, got)
			}
		}
	}
}

func TestCredentialsFromSecrets(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.file, func(t *testing.T) {
			vals, r := renderScenario(t, sc.file)
			for _, w := range workloads(r) {
				for _, c := range append(slices.Clone(w.template.Spec.InitContainers), w.template.Spec.Containers...) {
					for _, e := range c.Env {
						if slices.Contains(secretEnv, e.Name) && (e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
							t.Errorf("%s container %s: %s is not a secretKeyRef", w.id, c.Name, e.Name)
						}
					}
				}
			}

			worker := container(t, only[appsv1.Deployment](t, r).Spec.Template.Spec, "worker")
			wantRefs := map[string]string{}
			if sc.s3Secret != "" {
				wantRefs["AWS_ACCESS_KEY_ID"], wantRefs["AWS_SECRET_ACCESS_KEY"] = sc.s3Secret, sc.s3Secret
				if sc.sessionToken {
					wantRefs["AWS_SESSION_TOKEN"] = sc.s3Secret
				}
			}
			if sc.hfSecret != "" {
				wantRefs["HF_TOKEN"] = sc.hfSecret
			}
			for _, name := range secretEnv {
				e, ok := envVar(worker, name)
				want, wanted := wantRefs[name]
				switch {
				case ok != wanted:
					t.Errorf("worker %s set: %v, want %v", name, ok, wanted)
				case ok && e.ValueFrom.SecretKeyRef.Name != want:
					t.Errorf("worker %s from Secret %q, want %q", name, e.ValueFrom.SecretKeyRef.Name, want)
				}
			}

			// A Secret the chart creates must hold every key the pods read.
			created := map[string]*corev1.Secret{}
			for _, s := range objects[corev1.Secret](r) {
				created[s.Name] = s
			}
			for _, w := range workloads(r) {
				for _, c := range append(slices.Clone(w.template.Spec.InitContainers), w.template.Spec.Containers...) {
					for _, e := range c.Env {
						if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
							continue
						}
						ref := e.ValueFrom.SecretKeyRef
						if s, ok := created[ref.Name]; ok {
							if _, ok := s.Data[ref.Key]; !ok {
								t.Errorf("%s: %s reads key %q that Secret %s lacks", w.id, e.Name, ref.Key, ref.Name)
							}
						}
					}
				}
			}

			// No credential literal from the values may appear outside a Secret.
			var literals []string
			for _, key := range []string{"s3.accessKeyId", "s3.secretAccessKey", "s3.sessionToken", "huggingface.token"} {
				if v, err := vals.PathValue(key); err == nil && v != "" {
					literals = append(literals, v.(string))
				}
			}
			for _, o := range r.Objects {
				if o.Kind == "Secret" {
					continue
				}
				data, err := json.Marshal(o.Value)
				if err != nil {
					t.Fatal(err)
				}
				for _, lit := range literals {
					if strings.Contains(string(data), lit) {
						t.Errorf("%s %s contains the credential %q", o.Kind, o.Name, lit)
					}
				}
			}
			for _, lit := range literals {
				if strings.Contains(r.Notes, lit) {
					t.Errorf("NOTES.txt contains the credential %q", lit)
				}
			}
		})
	}
}

func TestNATSWiring(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.file, func(t *testing.T) {
			_, r := renderScenario(t, sc.file)
			for _, w := range workloads(r) {
				for _, c := range w.template.Spec.Containers {
					if c.Name != "worker" && c.Name != "coordinator" {
						continue
					}
					e, ok := envVar(c, "NATS_URL")
					if !ok || e.Value != sc.natsURL {
						t.Errorf("%s: NATS_URL %q, want %q", w.id, e.Value, sc.natsURL)
					}
					if got := flagValues(c.Args)["--nats"]; got != "$(NATS_URL)" {
						t.Errorf("%s: --nats %q, want $(NATS_URL)", w.id, got)
					}
				}
			}
			for _, sts := range objects[appsv1.StatefulSet](r) {
				nats := container(t, sts.Spec.Template.Spec, "nats")
				if !slices.Contains(nats.Args, "-js") || flagValues(nats.Args)["--port"] == "" {
					t.Errorf("nats args %q: want JetStream (-js) and --port", nats.Args)
				}
				if i := slices.Index(nats.Args, "-sd"); i < 0 || i+1 >= len(nats.Args) || nats.Args[i+1] != "/data" {
					t.Errorf("nats args %q: want -sd /data", nats.Args)
				}
				if len(sts.Spec.VolumeClaimTemplates) != 1 || sts.Spec.VolumeClaimTemplates[0].Name != "data" {
					t.Errorf("nats volumeClaimTemplates %+v: want one named data", sts.Spec.VolumeClaimTemplates)
				}
				if !mounts(nats, "data", "/data") {
					t.Error("nats does not mount its data claim at /data")
				}
			}
		})
	}
}

func mounts(c corev1.Container, volume, path string) bool {
	for _, m := range c.VolumeMounts {
		if m.Name == volume && m.MountPath == path {
			return true
		}
	}
	return false
}

func TestWorker(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.file, func(t *testing.T) {
			vals, r := renderScenario(t, sc.file)
			dep := only[appsv1.Deployment](t, r)
			spec := dep.Spec.Template.Spec
			worker := container(t, spec, "worker")
			modelName, _ := vals.PathValue("model.name")
			if modelName == nil {
				modelName = "Salesforce/blip2-opt-2.7b"
			}

			args := flagValues(worker.Args)
			if worker.Args[0] != "run" || args["--model"] != modelName || args["--metrics-addr"] != ":9090" {
				t.Errorf("worker args %q: want run --model %s --metrics-addr :9090", worker.Args, modelName)
			}
			for _, flag := range []string{"--batch-size", "--concurrency", "--drain-timeout"} {
				if args[flag] == "" {
					t.Errorf("worker args %q: no %s", worker.Args, flag)
				}
			}
			if !hasPort(worker, "9090") {
				t.Error("worker does not declare port 9090")
			}

			// GPU limits exactly when enabled.
			gpu, ok := worker.Resources.Limits["nvidia.com/gpu"]
			if sc.gpus == 0 && ok {
				t.Errorf("GPU limit %s without worker.gpu.enabled", gpu.String())
			}
			if sc.gpus > 0 {
				if !ok || gpu.Value() != sc.gpus {
					t.Errorf("GPU limit %v, want %d", worker.Resources.Limits, sc.gpus)
				}
				if !slices.ContainsFunc(spec.Tolerations, func(tol corev1.Toleration) bool { return tol.Key == "nvidia.com/gpu" }) {
					t.Errorf("tolerations %+v: none for nvidia.com/gpu", spec.Tolerations)
				}
				if len(spec.NodeSelector) == 0 {
					t.Error("no nodeSelector in the GPU scenario")
				}
				if args["--device"] != sc.device || args["--dtype"] != "bf16" {
					t.Errorf("GPU worker args %q: want --device %s --dtype bf16", worker.Args, sc.device)
				}
				if args["--max-batch"] != sc.maxBatch {
					t.Errorf("GPU worker args %q: --max-batch %q, want %q", worker.Args, args["--max-batch"], sc.maxBatch)
				}
			} else if args["--device"] != "" || args["--max-batch"] != "" {
				t.Errorf("CPU worker args %q set a device", worker.Args)
			}

			// The model volume: mounted, on the expected claim, HF_HOME on it.
			var model *corev1.Volume
			for i := range spec.Volumes {
				if spec.Volumes[i].Name == "model" {
					model = &spec.Volumes[i]
				}
			}
			if model == nil {
				t.Fatal("no model volume")
			}
			switch {
			case sc.modelClaim == "" && model.EmptyDir == nil:
				t.Errorf("model volume %+v, want an emptyDir", model.VolumeSource)
			case sc.modelClaim != "" && (model.PersistentVolumeClaim == nil || model.PersistentVolumeClaim.ClaimName != sc.modelClaim):
				t.Errorf("model volume %+v, want claim %s", model.VolumeSource, sc.modelClaim)
			}
			if !mounts(worker, "model", "/models") {
				t.Errorf("worker mounts %+v: model volume not at /models", worker.VolumeMounts)
			}
			if e, _ := envVar(worker, "HF_HOME"); !strings.HasPrefix(e.Value, "/models/") {
				t.Errorf("worker HF_HOME %q is not on the model volume", e.Value)
			}
			for _, m := range worker.VolumeMounts {
				if m.Name == "tmp" && m.MountPath != "/tmp" {
					t.Errorf("tmp volume at %s", m.MountPath)
				}
			}

			var pull *corev1.Container
			for i := range spec.InitContainers {
				if spec.InitContainers[i].Name == "model-pull" {
					pull = &spec.InitContainers[i]
				}
			}
			if (pull != nil) != sc.pull {
				t.Fatalf("model-pull init container present: %v, want %v", pull != nil, sc.pull)
			}
			if pull != nil {
				if !slices.Equal(pull.Args, []string{"pull", "--model", modelName.(string)}) {
					t.Errorf("model-pull args %q, want pull --model %s", pull.Args, modelName)
				}
				if pull.Image != worker.Image {
					t.Errorf("model-pull image %s, want the worker's %s", pull.Image, worker.Image)
				}
				if !mounts(*pull, "model", "/models") || slices.ContainsFunc(pull.VolumeMounts, func(m corev1.VolumeMount) bool { return m.ReadOnly }) {
					t.Errorf("model-pull mounts %+v: want the model volume writable at /models", pull.VolumeMounts)
				}
				if e, _ := envVar(*pull, "HF_HOME"); !strings.HasPrefix(e.Value, "/models/") {
					t.Errorf("model-pull HF_HOME %q is not on the model volume", e.Value)
				}
			}

			autoscaled := len(objects[ScaledObject](r)) > 0
			if autoscaled != (dep.Spec.Replicas == nil) {
				t.Errorf("replicas %v with autoscaling %v: KEDA must own the replica count exactly when it scales", dep.Spec.Replicas, autoscaled)
			}
		})
	}
}

func TestCoordinatorJob(t *testing.T) {
	for _, sc := range scenarios {
		if sc.jobArgs == nil {
			continue
		}
		t.Run(sc.file, func(t *testing.T) {
			_, r := renderScenario(t, sc.file)
			job := only[batchv1.Job](t, r)
			c := container(t, job.Spec.Template.Spec, "coordinator")
			if c.Args[0] != "run" {
				t.Errorf("coordinator args %q: want run first", c.Args)
			}
			got := flagValues(c.Args)
			for flag, want := range sc.jobArgs {
				if got[flag] != want {
					t.Errorf("coordinator %s %q, want %q (args %q)", flag, got[flag], want, c.Args)
				}
			}
			jobID := got["--job"]
			if job.Labels["blipflow.io/job"] != jobID {
				t.Errorf("Job label blipflow.io/job %q, want %q", job.Labels["blipflow.io/job"], jobID)
			}
			if p := job.Spec.Template.Spec.RestartPolicy; p != corev1.RestartPolicyNever && p != corev1.RestartPolicyOnFailure {
				t.Errorf("restartPolicy %q", p)
			}
			if !strings.Contains(r.Notes, "kubectl -n batch logs -f job/"+job.Name) {
				t.Errorf("NOTES.txt does not tell how to follow job/%s:\n%s", job.Name, r.Notes)
			}
			if !strings.Contains(r.Notes, "status "+jobID+" --nats "+sc.natsURL) {
				t.Errorf("NOTES.txt does not show `coordinator status %s --nats %s`:\n%s", jobID, sc.natsURL, r.Notes)
			}
		})
	}
}

func TestJobIDStable(t *testing.T) {
	render := func(input string) string {
		vals := chartutil.Values{"job": map[string]any{"input": input, "output": "s3://out/"}}
		r, err := Render(chartDir, vals, testRelease)
		if err != nil {
			t.Fatal(err)
		}
		return flagValues(container(t, only[batchv1.Job](t, r).Spec.Template.Spec, "coordinator").Args)["--job"]
	}
	a, b, c := render("s3://in/a/"), render("s3://in/a/"), render("s3://in/b/")
	if a != b {
		t.Errorf("same dataset, job ids %q and %q", a, b)
	}
	if a == c {
		t.Errorf("different datasets share job id %q", a)
	}
}

func TestAutoscaling(t *testing.T) {
	for _, sc := range scenarios {
		if sc.monitoringEndpoint == "" {
			continue
		}
		t.Run(sc.file, func(t *testing.T) {
			_, r := renderScenario(t, sc.file)
			so := only[ScaledObject](t, r)
			dep := only[appsv1.Deployment](t, r)
			if so.Spec.ScaleTargetRef.Name != dep.Name || so.Spec.ScaleTargetRef.Kind != "Deployment" {
				t.Errorf("scaleTargetRef %+v, want Deployment %s", so.Spec.ScaleTargetRef, dep.Name)
			}
			if so.Spec.MaxReplicaCount == nil || so.Spec.MinReplicaCount == nil || *so.Spec.MaxReplicaCount < *so.Spec.MinReplicaCount {
				t.Errorf("replica bounds %v..%v", so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount)
			}
			if len(so.Spec.Triggers) != 1 || so.Spec.Triggers[0].Type != "nats-jetstream" {
				t.Fatalf("triggers %+v, want one nats-jetstream", so.Spec.Triggers)
			}
			md := so.Spec.Triggers[0].Metadata
			for _, key := range []string{"natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold"} {
				if md[key] == "" {
					t.Errorf("trigger metadata has no %s: %v", key, md)
				}
			}
			if md["natsServerMonitoringEndpoint"] != sc.monitoringEndpoint {
				t.Errorf("monitoring endpoint %q, want %q", md["natsServerMonitoringEndpoint"], sc.monitoringEndpoint)
			}
			if md["stream"] != "BLIPFLOW_SHARDS" || md["consumer"] != "blipflow-workers" {
				t.Errorf("stream %q consumer %q, want the pipeline's BLIPFLOW_SHARDS and blipflow-workers", md["stream"], md["consumer"])
			}
		})
	}
}

func TestServicesSelectPods(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.file, func(t *testing.T) {
			_, r := renderScenario(t, sc.file)
			pods := workloads(r)
			for _, svc := range objects[corev1.Service](r) {
				sel := labels.SelectorFromSet(svc.Spec.Selector)
				var matched []workload
				for _, w := range pods {
					if sel.Matches(labels.Set(w.template.Labels)) {
						matched = append(matched, w)
					}
				}
				if strings.Contains(svc.Name, "coordinator") && len(objects[batchv1.Job](r)) == 0 {
					continue // selects the Job's pods once one runs
				}
				if len(matched) == 0 {
					t.Errorf("Service %s selects no pod template", svc.Name)
				}
				for _, port := range svc.Spec.Ports {
					for _, w := range matched {
						if !slices.ContainsFunc(w.template.Spec.Containers, func(c corev1.Container) bool { return hasPort(c, port.TargetPort.String()) }) {
							t.Errorf("Service %s port %s targets %s, which %s does not declare", svc.Name, port.Name, port.TargetPort.String(), w.id)
						}
					}
				}
			}
			for _, pdb := range objects[policyv1.PodDisruptionBudget](r) {
				sel := labels.SelectorFromSet(pdb.Spec.Selector.MatchLabels)
				if !sel.Matches(labels.Set(only[appsv1.Deployment](t, r).Spec.Template.Labels)) {
					t.Errorf("PodDisruptionBudget %s does not select the workers", pdb.Name)
				}
			}
		})
	}
}

func TestServiceMonitor(t *testing.T) {
	_, r := renderScenario(t, "full.yaml")
	sm := only[ServiceMonitor](t, r)
	if sm.Labels["release"] != "prometheus" {
		t.Errorf("ServiceMonitor labels %v: metrics.serviceMonitor.labels not applied", sm.Labels)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Fatalf("endpoints %+v, want port metrics path /metrics", sm.Spec.Endpoints)
	}
	sel := labels.SelectorFromSet(sm.Spec.Selector.MatchLabels)
	scraped := map[string]bool{}
	for _, svc := range objects[corev1.Service](r) {
		if !sel.Matches(labels.Set(svc.Labels)) {
			continue
		}
		if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "metrics" }) {
			t.Errorf("scraped Service %s has no metrics port", svc.Name)
		}
		scraped[svc.Spec.Selector["app.kubernetes.io/component"]] = true
	}
	if !scraped["worker"] || !scraped["coordinator"] {
		t.Errorf("ServiceMonitor scrapes components %v, want worker and coordinator", scraped)
	}
}

func TestRenderRefusesBadValues(t *testing.T) {
	tests := []struct {
		name   string
		values chartutil.Values
		want   string
	}{
		{"job without output", chartutil.Values{"job": map[string]any{"input": "s3://in/"}}, "job.output"},
		{"unknown task", chartutil.Values{"job": map[string]any{"input": "s3://in/", "output": "s3://out/", "task": "describe"}}, "job.task"},
		{"bad job id", chartutil.Values{"job": map[string]any{"input": "s3://in/", "output": "s3://out/", "id": "a/b"}}, "job.id"},
		{"zero shard size", chartutil.Values{"job": map[string]any{"input": "s3://in/", "output": "s3://out/", "shardSize": 0}}, "shardSize"},
		{"no NATS", chartutil.Values{"nats": map[string]any{"enabled": false}}, "nats.url"},
		{"latest tag", chartutil.Values{"image": map[string]any{"tag": "latest"}}, "latest"},
		{"half a key pair", chartutil.Values{"s3": map[string]any{"accessKeyId": "AKIA"}}, "s3.secretAccessKey"},
		{"autoscaling without monitoring endpoint", chartutil.Values{
			"nats":   map[string]any{"enabled": false, "url": "nats://nats:4222"},
			"worker": map[string]any{"autoscaling": map[string]any{"enabled": true}},
		}, "nats.monitoringEndpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render(chartDir, tt.values, testRelease)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one naming %s", err, tt.want)
			}
		})
	}
}

func TestVolumeMountsResolve(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.file, func(t *testing.T) {
			_, r := renderScenario(t, sc.file)
			claimTemplates := map[string][]string{}
			for _, sts := range objects[appsv1.StatefulSet](r) {
				for _, pvc := range sts.Spec.VolumeClaimTemplates {
					claimTemplates["StatefulSet/"+sts.Name] = append(claimTemplates["StatefulSet/"+sts.Name], pvc.Name)
				}
			}
			claims := map[string]bool{}
			for _, pvc := range objects[corev1.PersistentVolumeClaim](r) {
				claims[pvc.Name] = true
			}
			for _, w := range workloads(r) {
				volumes := slices.Clone(claimTemplates[w.id])
				for _, v := range w.template.Spec.Volumes {
					volumes = append(volumes, v.Name)
					if v.PersistentVolumeClaim != nil && !claims[v.PersistentVolumeClaim.ClaimName] && v.PersistentVolumeClaim.ClaimName != sc.modelClaim {
						t.Errorf("%s volume %s: claim %s is neither rendered nor the scenario's existing claim", w.id, v.Name, v.PersistentVolumeClaim.ClaimName)
					}
				}
				for _, c := range append(slices.Clone(w.template.Spec.InitContainers), w.template.Spec.Containers...) {
					for _, m := range c.VolumeMounts {
						if !slices.Contains(volumes, m.Name) {
							t.Errorf("%s container %s mounts unknown volume %s", w.id, c.Name, m.Name)
						}
					}
				}
			}
		})
	}
}

func TestEnvNamesUnique(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.file, func(t *testing.T) {
			_, r := renderScenario(t, sc.file)
			for _, w := range workloads(r) {
				for _, c := range append(slices.Clone(w.template.Spec.InitContainers), w.template.Spec.Containers...) {
					seen := map[string]bool{}
					for _, e := range c.Env {
						if seen[e.Name] {
							t.Errorf("%s container %s sets %s twice", w.id, c.Name, e.Name)
						}
						seen[e.Name] = true
					}
				}
			}
		})
	}
}

func TestOpenBLASThreadsFollowCPURequest(t *testing.T) {
	_, r := renderScenario(t, "default.yaml")
	worker := container(t, only[appsv1.Deployment](t, r).Spec.Template.Spec, "worker")
	e, ok := envVar(worker, "OPENBLAS_NUM_THREADS")
	if !ok || e.ValueFrom == nil || e.ValueFrom.ResourceFieldRef == nil || e.ValueFrom.ResourceFieldRef.Resource != "requests.cpu" {
		t.Errorf("OPENBLAS_NUM_THREADS %+v, want the worker's requests.cpu", e)
	}
}
