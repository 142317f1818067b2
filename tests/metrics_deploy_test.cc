// Consistency of deploy/: the Kubernetes manifests ask for a GPU, probe gRPC health on the port
// attuned listens on, and mount the claimed volume as the data dir; docker-compose's Prometheus
// scrapes the --http port; and every attune_ metric the Grafana dashboard queries is one that
// a real attuned with a running job exports. The flags are read from the argv each runtime
// really runs (the image's ENTRYPOINT and CMD with the file's overrides, tests/deploy_argv.h);
// deploy_start_test runs that argv.
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/deploy_argv.h"
#include "tests/metrics_running_job.h"
#include "yaml-cpp/yaml.h"

namespace attune::testing {
namespace {

const std::string kDeploy = ATTUNE_SOURCE_DIR "/deploy/";

// The value after `flag` in `argv` ("" when absent); a test failure when it appears twice
// (attuned rejects that: "--listen: At Most 1 required but received 2").
std::string FlagValue(const std::vector<std::string>& argv, const std::string& flag) {
  std::string value;
  int seen = 0;
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] == flag) {
      value = argv[i + 1];
      ++seen;
    }
  }
  EXPECT_LE(seen, 1) << flag << " given " << seen << " times";
  return value;
}

// The argv a runtime runs: the image's ENTRYPOINT and CMD with `override_of` applied.
std::vector<std::string> RuntimeArgv(const absl::StatusOr<ContainerCommand>& override_of) {
  absl::StatusOr<ContainerCommand> image = ReadDockerfile(ATTUNE_SOURCE_DIR "/Dockerfile");
  EXPECT_TRUE(image.ok()) << image.status();
  EXPECT_TRUE(override_of.ok()) << override_of.status();
  if (!image.ok() || !override_of.ok()) return {};
  return OverriddenArgv(*image, *override_of);
}

int PortOf(const std::string& address) { return std::stoi(address.substr(address.rfind(':') + 1)); }

TEST(DeployFilesTest, KubernetesDeploymentAsksForAGpuAndProbesGrpcHealth) {
  YAML::Node deployment = YAML::LoadFile(kDeploy + "k8s/deployment.yaml");
  YAML::Node pvc = YAML::LoadFile(kDeploy + "k8s/pvc.yaml");
  YAML::Node service = YAML::LoadFile(kDeploy + "k8s/service.yaml");
  EXPECT_EQ(deployment["kind"].as<std::string>(), "Deployment");
  EXPECT_EQ(pvc["kind"].as<std::string>(), "PersistentVolumeClaim");
  EXPECT_EQ(service["kind"].as<std::string>(), "Service");

  YAML::Node pod = deployment["spec"]["template"]["spec"];
  YAML::Node container = pod["containers"][0];
  EXPECT_EQ(container["resources"]["requests"]["nvidia.com/gpu"].as<int>(), 1);
  EXPECT_EQ(container["resources"]["limits"]["nvidia.com/gpu"].as<int>(), 1);

  std::map<std::string, int> ports;
  for (const auto& port : container["ports"]) {
    ports[port["name"].as<std::string>()] = port["containerPort"].as<int>();
  }
  const std::vector<std::string> args =
      RuntimeArgv(ReadDeploymentContainer(kDeploy + "k8s/deployment.yaml", "attuned"));
  EXPECT_EQ(PortOf(FlagValue(args, "--listen")), ports["grpc"]);
  EXPECT_EQ(PortOf(FlagValue(args, "--http")), ports["http"]);
  for (const char* probe : {"startupProbe", "livenessProbe", "readinessProbe"}) {
    EXPECT_EQ(container[probe]["grpc"]["port"].as<int>(), ports["grpc"]) << probe;
  }
  // attuned reports this service SERVING once the scheduler runs (server/main.cc).
  EXPECT_EQ(container["readinessProbe"]["grpc"]["service"].as<std::string>(), "attune.v1.Attune");

  const std::string data_dir = FlagValue(args, "--data-dir");
  const std::string claim = pvc["metadata"]["name"].as<std::string>();
  std::string volume_name;
  for (const auto& volume : pod["volumes"]) {
    if (volume["persistentVolumeClaim"] &&
        volume["persistentVolumeClaim"]["claimName"].as<std::string>() == claim) {
      volume_name = volume["name"].as<std::string>();
    }
  }
  ASSERT_FALSE(volume_name.empty()) << "no volume uses the claim " << claim;
  bool mounted = false;
  for (const auto& mount : container["volumeMounts"]) {
    mounted |= mount["name"].as<std::string>() == volume_name &&
               mount["mountPath"].as<std::string>() == data_dir;
  }
  EXPECT_TRUE(mounted) << "the claim is not mounted at --data-dir " << data_dir;

  for (const auto& port : service["spec"]["ports"]) {
    EXPECT_EQ(ports.count(port["targetPort"].as<std::string>()), 1u);
  }
}

TEST(DeployFilesTest, ComposePrometheusScrapesTheHttpPort) {
  YAML::Node compose = YAML::LoadFile(kDeploy + "docker-compose.yml");
  YAML::Node prometheus = YAML::LoadFile(kDeploy + "prometheus.yml");
  const std::string http = FlagValue(
      RuntimeArgv(ReadComposeService(kDeploy + "docker-compose.yml", "attuned")), "--http");
  const std::string target =
      prometheus["scrape_configs"][0]["static_configs"][0]["targets"][0].as<std::string>();
  EXPECT_EQ(target, absl::StrCat("attuned:", PortOf(http)));
  EXPECT_TRUE(compose["services"]["grafana"]);
}

TEST_F(RunningJobTest, GrafanaDashboardQueriesOnlyExportedMetrics) {
  std::ifstream file(kDeploy + "grafana/dashboards/attune.json");
  const nlohmann::json dashboard = nlohmann::json::parse(file);
  const std::string scrape = HttpGet(server_->http_address(), "/metrics");
  const std::regex name("attune_[a-z_]+");
  std::set<std::string> queried;
  for (const auto& panel : dashboard["panels"]) {
    ASSERT_FALSE(panel["targets"].empty()) << panel["title"];
    for (const auto& target : panel["targets"]) {
      const std::string expr = target["expr"];
      for (auto it = std::sregex_iterator(expr.begin(), expr.end(), name);
           it != std::sregex_iterator(); ++it) {
        std::string metric = it->str();
        for (const char* suffix : {"_bucket", "_count", "_sum"}) {
          if (absl::EndsWith(metric, suffix) && !absl::StrContains(scrape, "# TYPE " + metric)) {
            metric = metric.substr(0, metric.size() - std::string(suffix).size());
          }
        }
        queried.insert(metric);
      }
    }
  }
  EXPECT_GE(queried.size(), 10u);
  for (const std::string& metric : queried) {
    EXPECT_TRUE(absl::StrContains(scrape, "# TYPE " + metric + " ")) << metric;
  }
}

}  // namespace
}  // namespace attune::testing
