package kommbridge_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/kommbridge/kommbridge/metrics"
)

// No container engine runs in CI: check the compose file is valid YAML
// that names the services and wires them as docs/operations.md says.
func TestComposeFile(t *testing.T) {
	data, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Build       any               `yaml:"build"`
			Image       string            `yaml:"image"`
			Environment map[string]string `yaml:"environment"`
			DependsOn   map[string]any    `yaml:"depends_on"`
			Healthcheck map[string]any    `yaml:"healthcheck"`
			Volumes     []string          `yaml:"volumes"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	kb, ok := c.Services["kommbridge"]
	if !ok || c.Services["redis"].Image == "" {
		t.Fatalf("services: want kommbridge and redis, got %v", c.Services)
	}
	if kb.Environment["KOMMBRIDGE_STORE_URL"] != "redis://redis:6379/0" || kb.DependsOn["redis"] == nil || kb.Healthcheck == nil {
		t.Errorf("kommbridge service: %+v", kb)
	}
	for _, key := range []string{"OPENAI_API_KEY", "KOMMBRIDGE_WEBHOOK_TOKEN"} {
		if !strings.Contains(kb.Environment[key], "${"+key) {
			t.Errorf("%s is not taken from the environment", key)
		}
	}
	// Only what the container needs: config.yaml, never the directory
	// with its .env and .git.
	for _, v := range kb.Volumes {
		src, _, _ := strings.Cut(v, ":")
		if src == "." || src == "./" {
			t.Errorf("the whole directory is mounted: %s", v)
		}
	}
	if !slices.Contains(kb.Volumes, "./config.yaml:/etc/kommbridge/config.yaml:ro") {
		t.Errorf("config.yaml is not mounted read-only: %v", kb.Volumes)
	}
	for _, ignore := range []string{".gitignore", ".dockerignore"} {
		b, _ := os.ReadFile(ignore)
		if !slices.Contains(strings.Fields(string(b)), ".env") {
			t.Errorf("%s does not ignore .env", ignore)
		}
	}
}

func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "AS build", "USER nonroot", "HEALTHCHECK", "distroless/static"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

// Every metric the dashboard queries exists.
func TestDashboardMetricsExist(t *testing.T) {
	data, err := os.ReadFile("deploy/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, m := range metrics.Catalog {
		known[m.Name] = true
	}
	name := regexp.MustCompile(`kommbridge_[a-z_]+`)
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, n := range name.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_count"), "_sum")
				if !known[base] {
					t.Errorf("panel %q queries %s, which kommbridge does not export", p.Title, n)
				}
			}
		}
	}
}
