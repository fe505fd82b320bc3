package deploy

import (
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/artifact-archiver/artifact-archiver/pkg/webhook"
	"github.com/artifact-archiver/artifact-archiver/pkg/worker"
)

var overlays = []string{"dev", "prod"}

// The two Secrets every overlay generates, with their keys.
var overlaySecretFiles = map[string]string{
	"webhook-secrets.txt":        "test-webhook-secret\n",
	"github-app-private-key.pem": "-----BEGIN RSA PRIVATE KEY-----\ntest\n-----END RSA PRIVATE KEY-----\n",
}

// rendered holds an overlay's objects, strictly decoded, by name.
type rendered struct {
	namespaces      []*corev1.Namespace
	deployments     map[string]*appsv1.Deployment
	services        map[string]*corev1.Service
	secrets         map[string]*corev1.Secret
	configMaps      map[string]*corev1.ConfigMap
	serviceAccounts map[string]*corev1.ServiceAccount
	ingresses       map[string]*networkingv1.Ingress
	netpols         map[string]*networkingv1.NetworkPolicy
	pdbs            map[string]*policyv1.PodDisruptionBudget
	hpas            map[string]*autoscalingv2.HorizontalPodAutoscaler
	scaledObjects   map[string]*ScaledObject
}

// renderOverlay runs Kustomize (krusty, in process) on a copy of
// deploy/kubernetes in memory, with test files in place of the secrets that
// never enter git, and decodes every document into its k8s.io/api type,
// rejecting unknown fields.
func renderOverlay(t *testing.T, overlay string) *rendered {
	t.Helper()
	fs := filesys.MakeFsInMemory()
	err := filepath.WalkDir("kubernetes", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if filepath.Base(filepath.Dir(p)) == "secrets" {
			return nil // real secrets, if a developer has them, stay on disk
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return fs.WriteFile("/"+filepath.ToSlash(p), b)
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := "/kubernetes/overlays/" + overlay
	for name, content := range overlaySecretFiles {
		if err := fs.WriteFile(dir+"/secrets/"+name, []byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", overlay, err)
	}
	r := &rendered{
		deployments:     map[string]*appsv1.Deployment{},
		services:        map[string]*corev1.Service{},
		secrets:         map[string]*corev1.Secret{},
		configMaps:      map[string]*corev1.ConfigMap{},
		serviceAccounts: map[string]*corev1.ServiceAccount{},
		ingresses:       map[string]*networkingv1.Ingress{},
		netpols:         map[string]*networkingv1.NetworkPolicy{},
		pdbs:            map[string]*policyv1.PodDisruptionBudget{},
		hpas:            map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		scaledObjects:   map[string]*ScaledObject{},
	}
	for _, res := range resMap.Resources() {
		doc, err := res.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		kind, apiVersion, name := res.GetKind(), res.GetApiVersion(), res.GetName()
		id := fmt.Sprintf("%s %s/%s", overlay, kind, name)
		want, known := kindAPIVersion[kind]
		switch {
		case !known:
			t.Errorf("%s: kind %s is not validated by this test; add it to kindAPIVersion and rendered", id, kind)
			continue
		case apiVersion != want:
			t.Errorf("%s: apiVersion %s, want %s", id, apiVersion, want)
		}
		var obj any
		switch kind {
		case "Namespace":
			o := &corev1.Namespace{}
			r.namespaces, obj = append(r.namespaces, o), o
		case "Deployment":
			o := &appsv1.Deployment{}
			r.deployments[name], obj = o, o
		case "Service":
			o := &corev1.Service{}
			r.services[name], obj = o, o
		case "Secret":
			o := &corev1.Secret{}
			r.secrets[name], obj = o, o
		case "ConfigMap":
			o := &corev1.ConfigMap{}
			r.configMaps[name], obj = o, o
		case "ServiceAccount":
			o := &corev1.ServiceAccount{}
			r.serviceAccounts[name], obj = o, o
		case "Ingress":
			o := &networkingv1.Ingress{}
			r.ingresses[name], obj = o, o
		case "NetworkPolicy":
			o := &networkingv1.NetworkPolicy{}
			r.netpols[name], obj = o, o
		case "PodDisruptionBudget":
			o := &policyv1.PodDisruptionBudget{}
			r.pdbs[name], obj = o, o
		case "HorizontalPodAutoscaler":
			o := &autoscalingv2.HorizontalPodAutoscaler{}
			r.hpas[name], obj = o, o
		case "ScaledObject":
			o := &ScaledObject{}
			r.scaledObjects[name], obj = o, o
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Errorf("%s: strict decode: %v", id, err)
		}
	}
	return r
}

var kindAPIVersion = map[string]string{
	"Namespace":               "v1",
	"Deployment":              "apps/v1",
	"Service":                 "v1",
	"Secret":                  "v1",
	"ConfigMap":               "v1",
	"ServiceAccount":          "v1",
	"Ingress":                 "networking.k8s.io/v1",
	"NetworkPolicy":           "networking.k8s.io/v1",
	"PodDisruptionBudget":     "policy/v1",
	"HorizontalPodAutoscaler": "autoscaling/v2",
	"ScaledObject":            "keda.sh/v1alpha1",
}

func TestKustomizeOverlays(t *testing.T) {
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			t.Parallel()
			r := renderOverlay(t, overlay)
			if t.Failed() {
				return
			}
			for _, name := range []string{"archiver-webhook", "archiver-worker"} {
				if r.deployments[name] == nil {
					t.Fatalf("no Deployment %s", name)
				}
			}
			checkNamespace(t, r)
			for _, d := range r.deployments {
				checkPodSecurity(t, r, d)
				checkImages(t, d)
				checkProbesAndPorts(t, d)
			}
			workerCfg := checkWorker(t, r)
			checkWebhook(t, r)
			checkScaledObject(t, r, workerCfg)
			checkPDBs(t, r)
			checkNetworkPolicies(t, r)
			checkStreamReplicas(t, overlay, workerCfg.Topology.Replicas)
		})
	}
}

// checkNamespace: one Namespace, enforcing the restricted Pod Security
// Standard, holding every object.
func checkNamespace(t *testing.T, r *rendered) {
	t.Helper()
	if len(r.namespaces) != 1 {
		t.Fatalf("%d Namespaces, want 1", len(r.namespaces))
	}
	ns := r.namespaces[0]
	if got := ns.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Errorf("Namespace %s: pod-security enforce %q, want restricted", ns.Name, got)
	}
	var metas []metav1.ObjectMeta
	for _, d := range r.deployments {
		metas = append(metas, d.ObjectMeta)
	}
	for _, s := range r.secrets {
		metas = append(metas, s.ObjectMeta)
	}
	for _, s := range r.scaledObjects {
		metas = append(metas, s.ObjectMeta)
	}
	for _, m := range metas {
		if m.Namespace != ns.Name {
			t.Errorf("%s: namespace %q, want %q", m.Name, m.Namespace, ns.Name)
		}
	}
}

// checkPodSecurity: non-root, read-only root filesystem, no capabilities,
// RuntimeDefault seccomp, no service account token.
func checkPodSecurity(t *testing.T, r *rendered, d *appsv1.Deployment) {
	t.Helper()
	spec := d.Spec.Template.Spec
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("%s: pod securityContext.runAsNonRoot must be true", d.Name)
	}
	if psc != nil && (psc.RunAsUser == nil || *psc.RunAsUser != 65532) {
		t.Errorf("%s: pod runAsUser must be 65532 (the images' user)", d.Name)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod seccompProfile must be RuntimeDefault", d.Name)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken must be false", d.Name)
	}
	sa := r.serviceAccounts[spec.ServiceAccountName]
	if sa == nil {
		t.Errorf("%s: ServiceAccount %q is not in the overlay", d.Name, spec.ServiceAccountName)
	} else if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("ServiceAccount %s: automountServiceAccountToken must be false", sa.Name)
	}
	if len(spec.InitContainers) > 0 {
		t.Errorf("%s: init containers are not checked by this test", d.Name)
	}
	for _, c := range spec.Containers {
		sc := c.SecurityContext
		id := d.Name + "/" + c.Name
		switch {
		case sc == nil:
			t.Errorf("%s: no securityContext", id)
			continue
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("%s: readOnlyRootFilesystem must be true", id)
		case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
			t.Errorf("%s: runAsNonRoot must be true", id)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("%s: allowPrivilegeEscalation must be false", id)
		case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0:
			t.Errorf("%s: capabilities must drop ALL and add none", id)
		case sc.Privileged != nil && *sc.Privileged:
			t.Errorf("%s: privileged", id)
		}
		if c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: no memory limit", id)
		}
	}
}

var imageRE = regexp.MustCompile(`^ghcr\.io/artifact-archiver/([a-z0-9-]+)(?::([A-Za-z0-9._-]+))?(?:@(sha256:[0-9a-f]{64}))?$`)

// checkImages: every image is one that build-images.sh builds, with a
// pinned tag or digest.
func checkImages(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	targets := imageTargets(t)
	for _, c := range d.Spec.Template.Spec.Containers {
		m := imageRE.FindStringSubmatch(c.Image)
		if m == nil {
			t.Errorf("%s/%s: image %q is not ghcr.io/artifact-archiver/<target>:<tag> as built by build-images.sh", d.Name, c.Name, c.Image)
			continue
		}
		if !slices.Contains(targets, m[1]) {
			t.Errorf("%s/%s: image target %q is not in build-images.sh TARGETS %v", d.Name, c.Name, m[1], targets)
		}
		if (m[2] == "" || m[2] == "latest") && m[3] == "" {
			t.Errorf("%s/%s: image %q: pin a tag (not latest) or a digest in the overlay's images:", d.Name, c.Name, c.Image)
		}
	}
}

// checkProbesAndPorts: probes hit named container ports.
func checkProbesAndPorts(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		for kind, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
			if p == nil || p.HTTPGet == nil {
				t.Errorf("%s/%s: no HTTP %s probe", d.Name, c.Name, kind)
				continue
			}
			if containerPort(c, p.HTTPGet.Port.String()) == 0 {
				t.Errorf("%s/%s: %s probe port %q is not a container port", d.Name, c.Name, kind, p.HTTPGet.Port.String())
			}
		}
	}
}

// containerPort resolves a port name or number of c, or returns 0.
func containerPort(c corev1.Container, port string) int32 {
	for _, p := range c.Ports {
		if p.Name == port || strconv.Itoa(int(p.ContainerPort)) == port {
			return p.ContainerPort
		}
	}
	return 0
}

// addrPort returns the port of a listen address like ":9090".
func addrPort(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	return int32(n)
}

// containerEnv resolves a container's environment as the kubelet does:
// envFrom ConfigMaps first, env entries override them. valueFrom entries
// resolve to a placeholder.
func containerEnv(t *testing.T, r *rendered, id string, c corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil || from.Prefix != "" {
			t.Errorf("%s: only envFrom configMapRef without prefix is supported here", id)
			continue
		}
		cm := r.configMaps[from.ConfigMapRef.Name]
		if cm == nil {
			t.Errorf("%s: envFrom ConfigMap %q is not in the overlay", id, from.ConfigMapRef.Name)
			continue
		}
		for k, v := range cm.Data {
			env[k] = v
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			env[e.Name] = "<valueFrom>"
			continue
		}
		env[e.Name] = e.Value
	}
	return env
}

// checkEnvNames: every variable set is one the binary reads.
func checkEnvNames(t *testing.T, id string, env map[string]string, known binaryEnv) {
	t.Helper()
	for name := range env {
		if !known.has(name) {
			t.Errorf("%s: environment variable %s is not read by the binary (not in its -h list)", id, name)
		}
	}
}

// secretFileGetenv returns a getenv over env in which every *_FILE
// variable must name a file of a mounted Secret in the overlay; the file's
// content (from the Secret) is written to a temporary file whose path the
// variable then holds, so the binaries' config parsers can read it.
func secretFileGetenv(t *testing.T, r *rendered, d *appsv1.Deployment, c corev1.Container, env map[string]string) func(string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{}
	for name, value := range env {
		if !strings.HasSuffix(name, "_FILE") {
			continue
		}
		data, err := mountedSecretFile(r, d, c, value)
		if err != nil {
			t.Errorf("%s/%s: %s=%s: %v", d.Name, c.Name, name, value, err)
			continue
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		files[name] = p
	}
	return func(k string) string {
		if p, ok := files[k]; ok {
			return p
		}
		return env[k]
	}
}

// mountedSecretFile finds the Secret key that a container sees at file.
func mountedSecretFile(r *rendered, d *appsv1.Deployment, c corev1.Container, file string) ([]byte, error) {
	for _, m := range c.VolumeMounts {
		dir := strings.TrimSuffix(m.MountPath, "/")
		if path.Dir(file) != dir {
			continue
		}
		key := path.Base(file)
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			if v.Secret == nil {
				return nil, fmt.Errorf("volume %s is not a Secret", v.Name)
			}
			for _, it := range v.Secret.Items {
				if it.Path == key {
					key = it.Key
				}
			}
			s := r.secrets[v.Secret.SecretName]
			if s == nil {
				return nil, fmt.Errorf("Secret %s is not in the overlay", v.Secret.SecretName)
			}
			data, ok := s.Data[key]
			if !ok {
				return nil, fmt.Errorf("Secret %s has no key %s", s.Name, key)
			}
			return data, nil
		}
		return nil, fmt.Errorf("volume %s not found", m.Name)
	}
	return nil, fmt.Errorf("no volume is mounted at %s", path.Dir(file))
}

// checkWorker: the worker's rendered environment is a configuration the
// worker accepts, its grace period outlasts ARCHIVER_SHUTDOWN_GRACE, and
// its ServiceAccount carries a cloud identity.
func checkWorker(t *testing.T, r *rendered) worker.ServiceConfig {
	t.Helper()
	d := r.deployments["archiver-worker"]
	if d.Spec.Replicas != nil {
		t.Errorf("%s: spec.replicas is set; KEDA owns the replica count", d.Name)
	}
	c := d.Spec.Template.Spec.Containers[0]
	env := containerEnv(t, r, d.Name, c)
	checkEnvNames(t, d.Name, env, workerEnv())
	cfg, err := worker.ServiceConfigFromEnv(secretFileGetenv(t, r, d, c, env))
	if err != nil {
		t.Fatalf("%s: the worker rejects its configuration: %v", d.Name, err)
	}
	if len(cfg.AppPrivateKey) == 0 || cfg.AppID == 0 {
		t.Errorf("%s: run with the GitHub App (GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY_FILE), not a token", d.Name)
	}
	if env["GITHUB_TOKEN"] != "" || env["AWS_SECRET_ACCESS_KEY"] != "" {
		t.Errorf("%s: no static credentials in the environment; use the Secret files and IRSA", d.Name)
	}
	if cfg.AllowHTTP {
		t.Errorf("%s: ARCHIVER_ALLOW_HTTP_DOWNLOADS is for the simulator only", d.Name)
	}
	grace := time.Duration(ptrOr(d.Spec.Template.Spec.TerminationGracePeriodSeconds, 30)) * time.Second
	if grace < cfg.ShutdownGrace+15*time.Second {
		t.Errorf("%s: terminationGracePeriodSeconds %s must exceed ARCHIVER_SHUTDOWN_GRACE %s by 15s (hand back runs, drain NATS)", d.Name, grace, cfg.ShutdownGrace)
	}
	if got, want := containerPort(c, "metrics"), addrPort(t, cfg.MetricsAddr); got != want {
		t.Errorf("%s: metrics port %d, ARCHIVER_METRICS_ADDR listens on %d", d.Name, got, want)
	}
	sa := r.serviceAccounts[d.Spec.Template.Spec.ServiceAccountName]
	if sa != nil && !regexp.MustCompile(`^arn:aws:iam::\d{12}:role/.+`).MatchString(sa.Annotations["eks.amazonaws.com/role-arn"]) {
		t.Errorf("ServiceAccount %s: eks.amazonaws.com/role-arn %q is not an IAM role ARN", sa.Name, sa.Annotations["eks.amazonaws.com/role-arn"])
	}
	return cfg
}

// checkWebhook: the webhook's configuration is accepted; the Service,
// Ingress and HPA fit its Deployment.
func checkWebhook(t *testing.T, r *rendered) {
	t.Helper()
	d := r.deployments["archiver-webhook"]
	if d.Spec.Replicas != nil {
		t.Errorf("%s: spec.replicas is set; the HPA owns the replica count", d.Name)
	}
	c := d.Spec.Template.Spec.Containers[0]
	env := containerEnv(t, r, d.Name, c)
	checkEnvNames(t, d.Name, env, webhookEnv())
	getenv := secretFileGetenv(t, r, d, c, env)
	cfg, err := webhook.ConfigFromEnv(getenv)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatalf("%s: the webhook rejects its configuration: %v", d.Name, err)
	}
	if env["GITHUB_WEBHOOK_SECRET"] != "" {
		t.Errorf("%s: the webhook secret belongs in GITHUB_WEBHOOK_SECRET_FILE (a Secret), not in the environment", d.Name)
	}
	if _, err := cfg.LoadSecrets(os.ReadFile); err != nil {
		t.Errorf("%s: %v", d.Name, err)
	}
	httpPort := addrPort(t, cfg.ListenAddr)
	if containerPort(c, "http") != httpPort {
		t.Errorf("%s: container port http is not ARCHIVER_LISTEN_ADDR's %d", d.Name, httpPort)
	}
	if cfg.MetricsAddr == "" || addrPort(t, cfg.MetricsAddr) == httpPort {
		t.Errorf("%s: set ARCHIVER_METRICS_ADDR to another port, so /metrics is not behind the Ingress", d.Name)
	} else if containerPort(c, "metrics") != addrPort(t, cfg.MetricsAddr) {
		t.Errorf("%s: container port metrics is not ARCHIVER_METRICS_ADDR's", d.Name)
	}
	var preStop time.Duration
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	grace := time.Duration(ptrOr(d.Spec.Template.Spec.TerminationGracePeriodSeconds, 30)) * time.Second
	if grace <= preStop+cfg.ShutdownTimeout {
		t.Errorf("%s: terminationGracePeriodSeconds %s must exceed preStop %s + ARCHIVER_SHUTDOWN_TIMEOUT %s", d.Name, grace, preStop, cfg.ShutdownTimeout)
	}

	podLabels := labels.Set(d.Spec.Template.Labels)
	svc := r.services["archiver-webhook"]
	if svc == nil {
		t.Fatal("no Service archiver-webhook")
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
		t.Errorf("Service %s: selector does not match the webhook pods", svc.Name)
	}
	for _, p := range svc.Spec.Ports {
		if containerPort(c, p.TargetPort.String()) != httpPort {
			t.Errorf("Service %s: port %s targets %q, not the webhook's listen port", svc.Name, p.Name, p.TargetPort.String())
		}
	}
	ing := r.ingresses["archiver-webhook"]
	if ing == nil {
		t.Fatal("no Ingress archiver-webhook")
	}
	for _, rule := range ing.Spec.Rules {
		for _, p := range rule.HTTP.Paths {
			b := p.Backend.Service
			if p.Path != "/webhook" {
				t.Errorf("Ingress %s: path %q; expose /webhook only", ing.Name, p.Path)
			}
			if b == nil || r.services[b.Name] == nil || !slices.ContainsFunc(r.services[b.Name].Spec.Ports, func(sp corev1.ServicePort) bool {
				return sp.Name == b.Port.Name || (b.Port.Number != 0 && sp.Port == b.Port.Number)
			}) {
				t.Errorf("Ingress %s: backend is not a port of a Service in the overlay", ing.Name)
			}
		}
	}
	if len(ing.Spec.TLS) == 0 {
		t.Errorf("Ingress %s: no TLS", ing.Name)
	}

	hpa := r.hpas["archiver-webhook"]
	if hpa == nil {
		t.Fatal("no HorizontalPodAutoscaler archiver-webhook")
	}
	if ref := hpa.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != d.Name {
		t.Errorf("HPA %s: scales %s/%s, want Deployment/%s", hpa.Name, ref.Kind, ref.Name, d.Name)
	}
	cpu := slices.ContainsFunc(hpa.Spec.Metrics, func(m autoscalingv2.MetricSpec) bool {
		return m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU
	})
	if !cpu {
		t.Errorf("HPA %s: no CPU resource metric", hpa.Name)
	}
	if c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("%s: a CPU request is required for the HPA's utilization target", d.Name)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 1 || hpa.Spec.MaxReplicas < *hpa.Spec.MinReplicas {
		t.Errorf("HPA %s: replicas %v..%d", hpa.Name, hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
}

// checkScaledObject: KEDA scales the worker on its own consumer, one pod
// per ARCHIVER_RUN_SLOTS pending runs.
func checkScaledObject(t *testing.T, r *rendered, cfg worker.ServiceConfig) {
	t.Helper()
	so := r.scaledObjects["archiver-worker"]
	if so == nil {
		t.Fatal("no ScaledObject archiver-worker")
	}
	ref := so.Spec.ScaleTargetRef
	if ref == nil || ref.Name != "archiver-worker" || (ref.Kind != "" && ref.Kind != "Deployment") {
		t.Errorf("ScaledObject %s: scaleTargetRef %+v, want the Deployment archiver-worker", so.Name, ref)
	}
	minR, maxR := ptrOr(so.Spec.MinReplicaCount, 0), ptrOr(so.Spec.MaxReplicaCount, 100)
	if minR < 1 {
		t.Errorf("ScaledObject %s: minReplicaCount %d; keep a worker running (it creates the consumer)", so.Name, minR)
	}
	if maxR < minR {
		t.Errorf("ScaledObject %s: maxReplicaCount %d < minReplicaCount %d", so.Name, maxR, minR)
	}
	if int(maxR)*cfg.RunSlots > cfg.Topology.MaxAckPending {
		t.Errorf("ScaledObject %s: maxReplicaCount %d × ARCHIVER_RUN_SLOTS %d exceeds ARCHIVER_MAX_ACK_PENDING %d: the extra pods would idle",
			so.Name, maxR, cfg.RunSlots, cfg.Topology.MaxAckPending)
	}
	if len(so.Spec.Triggers) != 1 {
		t.Fatalf("ScaledObject %s: %d triggers, want 1", so.Name, len(so.Spec.Triggers))
	}
	tr := so.Spec.Triggers[0]
	if tr.Type != "nats-jetstream" {
		t.Fatalf("ScaledObject %s: trigger type %q, want nats-jetstream", so.Name, tr.Type)
	}
	for k := range tr.Metadata {
		if _, ok := natsJetStreamMetadata[k]; !ok {
			t.Errorf("ScaledObject %s: unknown nats-jetstream metadata %q", so.Name, k)
		}
	}
	for k, required := range natsJetStreamMetadata {
		if required && tr.Metadata[k] == "" {
			t.Errorf("ScaledObject %s: nats-jetstream metadata %s is required", so.Name, k)
		}
	}
	if tr.Metadata["account"] == "" && tr.Metadata["accountID"] == "" {
		t.Errorf("ScaledObject %s: account (\"$G\" without NATS accounts) is required", so.Name)
	}
	if _, _, err := net.SplitHostPort(tr.Metadata["natsServerMonitoringEndpoint"]); err != nil || strings.Contains(tr.Metadata["natsServerMonitoringEndpoint"], "/") {
		t.Errorf("ScaledObject %s: natsServerMonitoringEndpoint %q: want host:port without scheme", so.Name, tr.Metadata["natsServerMonitoringEndpoint"])
	}
	if got := tr.Metadata["stream"]; got != cfg.Topology.Stream {
		t.Errorf("ScaledObject %s: stream %q, the worker uses %q", so.Name, got, cfg.Topology.Stream)
	}
	if got := tr.Metadata["consumer"]; got != cfg.Topology.Consumer {
		t.Errorf("ScaledObject %s: consumer %q, the worker uses %q", so.Name, got, cfg.Topology.Consumer)
	}
	if got := tr.Metadata["lagThreshold"]; got != strconv.Itoa(cfg.RunSlots) {
		t.Errorf("ScaledObject %s: lagThreshold %q, want ARCHIVER_RUN_SLOTS (%d): one pod per that many pending runs", so.Name, got, cfg.RunSlots)
	}
	if so.Spec.Fallback != nil && tr.MetricType != "" && tr.MetricType != autoscalingv2.AverageValueMetricType {
		t.Errorf("ScaledObject %s: fallback needs metricType AverageValue", so.Name)
	}
}

// checkPDBs: each PDB selects a Deployment's pods and never blocks drains.
func checkPDBs(t *testing.T, r *rendered) {
	t.Helper()
	for _, name := range []string{"archiver-webhook", "archiver-worker"} {
		pdb := r.pdbs[name]
		if pdb == nil {
			t.Errorf("no PodDisruptionBudget %s", name)
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(r.deployments[name].Spec.Template.Labels)) {
			t.Errorf("PDB %s: selector does not match Deployment %s's pods", name, name)
		}
		if pdb.Spec.MinAvailable != nil || pdb.Spec.MaxUnavailable == nil {
			t.Errorf("PDB %s: use maxUnavailable; minAvailable blocks drains at the autoscaler's minimum", name)
		}
	}
}

// checkNetworkPolicies: each Deployment is selected by one policy that
// restricts both directions, and its ingress ports exist.
func checkNetworkPolicies(t *testing.T, r *rendered) {
	t.Helper()
	for _, d := range r.deployments {
		var matched []*networkingv1.NetworkPolicy
		for _, np := range r.netpols {
			sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
			if err != nil {
				t.Errorf("NetworkPolicy %s: %v", np.Name, err)
				continue
			}
			if !sel.Empty() && sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				matched = append(matched, np)
			}
		}
		if len(matched) != 1 {
			t.Errorf("%s: selected by %d NetworkPolicies, want 1", d.Name, len(matched))
			continue
		}
		np := matched[0]
		if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
			t.Errorf("NetworkPolicy %s: policyTypes must include Ingress and Egress", np.Name)
		}
		for _, rule := range np.Spec.Ingress {
			for _, p := range rule.Ports {
				if p.Port == nil || !slices.ContainsFunc(d.Spec.Template.Spec.Containers, func(c corev1.Container) bool {
					return containerPort(c, p.Port.String()) != 0
				}) {
					t.Errorf("NetworkPolicy %s: ingress port %v is not a port of %s", np.Name, p.Port, d.Name)
				}
			}
		}
	}
}

// checkStreamReplicas: R3 streams need the 3-node NATS of
// deploy/nats/values.yaml; dev runs one node.
func checkStreamReplicas(t *testing.T, overlay string, replicas int) {
	t.Helper()
	var values struct {
		Config struct {
			Cluster struct {
				Enabled  bool `json:"enabled"`
				Replicas int  `json:"replicas"`
			} `json:"cluster"`
		} `json:"config"`
	}
	if err := yaml.Unmarshal(readFile(t, "nats/values.yaml"), &values); err != nil {
		t.Fatal(err)
	}
	nodes := 1
	if overlay == "prod" && values.Config.Cluster.Enabled {
		nodes = values.Config.Cluster.Replicas
	}
	if replicas > nodes {
		t.Errorf("ARCHIVER_STREAM_REPLICAS=%d but the %s NATS has %d nodes", replicas, overlay, nodes)
	}
	if overlay == "prod" && replicas < 3 {
		t.Errorf("prod: ARCHIVER_STREAM_REPLICAS=%d; use 3 so that one NATS node can fail", replicas)
	}
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
