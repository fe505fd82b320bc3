package deploy

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"sigs.k8s.io/yaml"
)

// decodeStrict decodes JSON, rejecting unknown fields and trailing data.
func decodeStrict(t *testing.T, file string, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(readFile(t, file)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if dec.More() {
		t.Fatalf("%s: trailing data", file)
	}
}

// iamPolicy is an IAM policy document.
type iamPolicy struct {
	Version   string `json:"Version"`
	Statement []struct {
		Sid       string                    `json:"Sid"`
		Effect    string                    `json:"Effect"`
		Principal any                       `json:"Principal,omitempty"`
		Action    stringOrList              `json:"Action"`
		Resource  stringOrList              `json:"Resource"`
		Condition map[string]map[string]any `json:"Condition,omitempty"`
	} `json:"Statement"`
}

// stringOrList is IAM's "a string or a list of strings".
type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

func (p iamPolicy) allowed() []string {
	var actions []string
	for _, st := range p.Statement {
		if st.Effect == "Allow" {
			actions = append(actions, st.Action...)
		}
	}
	return actions
}

// TestS3Policies: the IAM policies are valid documents that grant the
// worker exactly what pkg/s3store calls, and readers nothing that writes.
func TestS3Policies(t *testing.T) {
	for _, file := range []string{"s3/iam-worker-policy.json", "s3/iam-reader-policy.json", "s3/bucket-policy.json"} {
		var p iamPolicy
		decodeStrict(t, file, &p)
		if p.Version != "2012-10-17" || len(p.Statement) == 0 {
			t.Errorf("%s: Version %q with %d statements", file, p.Version, len(p.Statement))
		}
		for _, st := range p.Statement {
			if st.Effect != "Allow" && st.Effect != "Deny" {
				t.Errorf("%s %s: Effect %q", file, st.Sid, st.Effect)
			}
			for _, a := range st.Action {
				if st.Effect == "Allow" && strings.HasSuffix(a, ":*") {
					t.Errorf("%s %s: wildcard action %s", file, st.Sid, a)
				}
			}
			for _, r := range st.Resource {
				if !strings.HasPrefix(r, "arn:aws:") {
					t.Errorf("%s %s: resource %q is not an ARN", file, st.Sid, r)
				}
			}
		}
	}

	var w iamPolicy
	decodeStrict(t, "s3/iam-worker-policy.json", &w)
	// What pkg/s3store calls: HeadBucket/ListObjectsV2 (ListBucket),
	// ListMultipartUploads, Put/Create/UploadPart/Complete (PutObject),
	// Get/HeadObject (GetObject), AbortMultipartUpload, and ListParts.
	need := []string{"s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:PutObject", "s3:GetObject",
		"s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"}
	// SSE-KMS, and ARCHIVER_OBJECT_LOCK_MODE / _LEGAL_HOLD.
	optional := []string{"kms:GenerateDataKey", "kms:Decrypt", "s3:PutObjectRetention", "s3:PutObjectLegalHold"}
	got := w.allowed()
	for _, a := range need {
		if !slices.Contains(got, a) {
			t.Errorf("worker policy: missing %s", a)
		}
	}
	for _, a := range got {
		if !slices.Contains(need, a) && !slices.Contains(optional, a) {
			t.Errorf("worker policy: %s is more than the worker needs", a)
		}
	}

	var r iamPolicy
	decodeStrict(t, "s3/iam-reader-policy.json", &r)
	for _, a := range r.allowed() {
		if a != "s3:RestoreObject" && !strings.HasPrefix(a, "s3:Get") && !strings.HasPrefix(a, "s3:List") && a != "kms:Decrypt" {
			t.Errorf("reader policy: %s is not read-only", a)
		}
	}
}

// TestS3BucketConfig: the bucket configuration files decode strictly into
// the S3 API's own types (the JSON the AWS CLI takes).
func TestS3BucketConfig(t *testing.T) {
	var v types.VersioningConfiguration
	decodeStrict(t, "s3/bucket-versioning.json", &v)
	if v.Status != types.BucketVersioningStatusEnabled {
		t.Errorf("versioning: Status %q, want Enabled", v.Status)
	}

	var lc types.BucketLifecycleConfiguration
	decodeStrict(t, "s3/bucket-lifecycle.json", &lc)
	glacier := []types.TransitionStorageClass{types.TransitionStorageClassGlacierIr, types.TransitionStorageClassGlacier, types.TransitionStorageClassDeepArchive}
	var abortAll, tiering bool
	ids := map[string]bool{}
	for _, rule := range lc.Rules {
		id := deref(rule.ID)
		if id == "" || ids[id] {
			t.Errorf("lifecycle: rule ID %q empty or repeated", id)
		}
		ids[id] = true
		if rule.Status != types.ExpirationStatusEnabled && rule.Status != types.ExpirationStatusDisabled {
			t.Errorf("lifecycle %s: Status %q", id, rule.Status)
		}
		if rule.Filter == nil {
			t.Errorf("lifecycle %s: Filter is required (an empty prefix means the whole bucket)", id)
			continue
		}
		last := int32(0)
		for _, tr := range rule.Transitions {
			if !slices.Contains(glacier, tr.StorageClass) {
				t.Errorf("lifecycle %s: transition to %s, want a Glacier class", id, tr.StorageClass)
			}
			if tr.Days == nil || *tr.Days <= last {
				t.Errorf("lifecycle %s: transitions must have increasing Days", id)
			} else {
				last = *tr.Days
			}
			if rule.Status == types.ExpirationStatusEnabled {
				tiering = true
			}
		}
		if a := rule.AbortIncompleteMultipartUpload; a != nil && rule.Status == types.ExpirationStatusEnabled &&
			rule.Filter.Prefix != nil && *rule.Filter.Prefix == "" && a.DaysAfterInitiation != nil && *a.DaysAfterInitiation >= 1 {
			abortAll = true
		}
	}
	if !tiering {
		t.Error("lifecycle: no enabled rule transitions to a Glacier class")
	}
	if !abortAll {
		t.Error("lifecycle: no enabled bucket-wide AbortIncompleteMultipartUpload rule (AWS keeps and bills abandoned parts forever)")
	}

	var ol types.ObjectLockConfiguration
	decodeStrict(t, "s3/bucket-object-lock.json", &ol)
	if ol.ObjectLockEnabled != types.ObjectLockEnabledEnabled || ol.Rule == nil || ol.Rule.DefaultRetention == nil {
		t.Fatal("object lock: want ObjectLockEnabled and a DefaultRetention")
	}
	dr := ol.Rule.DefaultRetention
	if (dr.Days == nil) == (dr.Years == nil) {
		t.Error("object lock: DefaultRetention takes Days or Years, not both")
	}
	if dr.Mode != types.ObjectLockRetentionModeCompliance && dr.Mode != types.ObjectLockRetentionModeGovernance {
		t.Errorf("object lock: Mode %q", dr.Mode)
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// githubAppManifest is the GitHub App manifest format
// (docs.github.com: "Registering a GitHub App from a manifest").
type githubAppManifest struct {
	Name           string `json:"name"`
	URL            string `json:"url"`
	HookAttributes struct {
		URL    string `json:"url"`
		Active *bool  `json:"active,omitempty"`
	} `json:"hook_attributes"`
	RedirectURL           string            `json:"redirect_url,omitempty"`
	CallbackURLs          []string          `json:"callback_urls,omitempty"`
	SetupURL              string            `json:"setup_url,omitempty"`
	Description           string            `json:"description,omitempty"`
	Public                bool              `json:"public"`
	DefaultEvents         []string          `json:"default_events"`
	DefaultPermissions    map[string]string `json:"default_permissions"`
	RequestOAuthOnInstall bool              `json:"request_oauth_on_install,omitempty"`
	SetupOnUpdate         bool              `json:"setup_on_update,omitempty"`
}

// TestGitHubAppManifests: least privilege, one event, the webhook's path.
func TestGitHubAppManifests(t *testing.T) {
	for file, actions := range map[string]string{
		"github-app/manifest.json":             "read",
		"github-app/manifest-with-delete.json": "write",
	} {
		var m githubAppManifest
		decodeStrict(t, file, &m)
		if m.Name == "" || !strings.HasPrefix(m.URL, "https://") {
			t.Errorf("%s: name and an https url are required", file)
		}
		if !strings.HasPrefix(m.HookAttributes.URL, "https://") || !strings.HasSuffix(m.HookAttributes.URL, "/webhook") {
			t.Errorf("%s: hook_attributes.url %q: want https://HOST/webhook (the Ingress path)", file, m.HookAttributes.URL)
		}
		if !slices.Equal(m.DefaultEvents, []string{"workflow_run"}) {
			t.Errorf("%s: default_events %v, want [workflow_run]", file, m.DefaultEvents)
		}
		want := map[string]string{"actions": actions, "metadata": "read"}
		if len(m.DefaultPermissions) != len(want) {
			t.Errorf("%s: default_permissions %v, want exactly %v", file, m.DefaultPermissions, want)
		}
		for k, v := range want {
			if m.DefaultPermissions[k] != v {
				t.Errorf("%s: permission %s is %q, want %q", file, k, m.DefaultPermissions[k], v)
			}
		}
		if m.Public {
			t.Errorf("%s: the App should be private to its organization", file)
		}
	}
}

// TestNATSValues: the NATS chart values give the 3-node JetStream cluster
// the manifests expect, with the exporter the alerts read.
func TestNATSValues(t *testing.T) {
	var v struct {
		Config struct {
			Cluster struct {
				Enabled  bool `json:"enabled"`
				Replicas int  `json:"replicas"`
			} `json:"cluster"`
			JetStream struct {
				Enabled   bool `json:"enabled"`
				FileStore struct {
					Enabled bool `json:"enabled"`
					PVC     struct {
						Enabled bool   `json:"enabled"`
						Size    string `json:"size"`
					} `json:"pvc"`
				} `json:"fileStore"`
			} `json:"jetstream"`
			Monitor struct {
				Enabled bool `json:"enabled"`
				Port    int  `json:"port"`
			} `json:"monitor"`
		} `json:"config"`
		PromExporter struct {
			Enabled bool `json:"enabled"`
		} `json:"promExporter"`
	}
	if err := yaml.Unmarshal(readFile(t, "nats/values.yaml"), &v); err != nil {
		t.Fatal(err)
	}
	c := v.Config
	if !c.Cluster.Enabled || c.Cluster.Replicas != 3 {
		t.Errorf("cluster: enabled %v replicas %d, want a 3-node cluster", c.Cluster.Enabled, c.Cluster.Replicas)
	}
	if !c.JetStream.Enabled || !c.JetStream.FileStore.Enabled || !c.JetStream.FileStore.PVC.Enabled || c.JetStream.FileStore.PVC.Size == "" {
		t.Error("jetstream: want file storage on a PVC")
	}
	if !c.Monitor.Enabled || c.Monitor.Port != 8222 {
		t.Error("monitor: KEDA reads /jsz on port 8222")
	}
	if !v.PromExporter.Enabled {
		t.Error("promExporter: the consumer-lag alerts need it")
	}
}
