#include "tests/deploy_argv.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace attune::testing {
namespace {

// The Dockerfile's instructions as (KEYWORD, rest), continuation lines joined, comments dropped.
std::vector<std::pair<std::string, std::string>> Instructions(std::istream& in) {
  std::vector<std::pair<std::string, std::string>> instructions;
  std::string line, joined;
  while (std::getline(in, line)) {
    const std::string trimmed(absl::StripAsciiWhitespace(line));
    if (joined.empty() && (trimmed.empty() || trimmed[0] == '#')) continue;
    if (!trimmed.empty() && trimmed.back() == '\\') {
      joined += trimmed.substr(0, trimmed.size() - 1) + " ";
      continue;
    }
    joined += trimmed;
    const size_t space = joined.find_first_of(" \t");
    std::string keyword = absl::AsciiStrToUpper(joined.substr(0, space));
    std::string rest = space == std::string::npos ? "" : joined.substr(space + 1);
    instructions.emplace_back(std::move(keyword), std::string(absl::StripAsciiWhitespace(rest)));
    joined.clear();
  }
  return instructions;
}

// The exec form `["a", "b"]` of `keyword`.
absl::StatusOr<std::vector<std::string>> ExecForm(const std::string& keyword,
                                                  const std::string& text) {
  const nlohmann::json array = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!array.is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(
        keyword, ": '", text, "' is not the exec form; expected a JSON array of strings"));
  }
  std::vector<std::string> argv;
  for (const auto& item : array) {
    if (!item.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(keyword, ": ", item.dump(), " is not a string"));
    }
    argv.push_back(item.get<std::string>());
  }
  return argv;
}

// A YAML list of strings, or a string split at whitespace; nullopt when the key is absent.
std::optional<std::vector<std::string>> YamlArgv(const YAML::Node& node) {
  if (!node) return std::nullopt;
  if (node.IsScalar()) {
    return absl::StrSplit(node.as<std::string>(), absl::ByAnyChar(" \t\n"), absl::SkipEmpty());
  }
  std::vector<std::string> argv;
  for (const auto& item : node) argv.push_back(item.as<std::string>());
  return argv;
}

absl::StatusOr<YAML::Node> LoadYaml(const std::string& path) {
  try {
    return YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    return absl::NotFoundError(absl::StrCat(path, ": ", e.what()));
  }
}

}  // namespace

absl::StatusOr<ContainerCommand> ReadDockerfile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read"));
  ContainerCommand image;
  for (const auto& [keyword, rest] : Instructions(in)) {
    if (keyword == "FROM") {
      image = ContainerCommand{};  // a new stage; only the last one is the image
    } else if (keyword == "ENTRYPOINT") {
      auto argv = ExecForm(keyword, rest);
      if (!argv.ok()) return argv.status();
      image.entrypoint = *argv;
      image.cmd.reset();  // an ENTRYPOINT resets the CMD inherited from the base image
    } else if (keyword == "CMD") {
      auto argv = ExecForm(keyword, rest);
      if (!argv.ok()) return argv.status();
      image.cmd = *argv;
    }
  }
  if (!image.entrypoint.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the final stage has no ENTRYPOINT; expected [\"attuned\"]"));
  }
  return image;
}

absl::StatusOr<ContainerCommand> ReadComposeService(const std::string& path,
                                                    const std::string& service) {
  absl::StatusOr<YAML::Node> compose = LoadYaml(path);
  if (!compose.ok()) return compose.status();
  const YAML::Node node = (*compose)["services"][service];
  if (!node) return absl::NotFoundError(absl::StrCat(path, ": no service '", service, "'"));
  return ContainerCommand{YamlArgv(node["entrypoint"]), YamlArgv(node["command"])};
}

absl::StatusOr<ContainerCommand> ReadDeploymentContainer(const std::string& path,
                                                         const std::string& container) {
  absl::StatusOr<YAML::Node> deployment = LoadYaml(path);
  if (!deployment.ok()) return deployment.status();
  for (const auto& node : (*deployment)["spec"]["template"]["spec"]["containers"]) {
    if (node["name"].as<std::string>() != container) continue;
    return ContainerCommand{YamlArgv(node["command"]), YamlArgv(node["args"])};
  }
  return absl::NotFoundError(absl::StrCat(path, ": no container '", container, "'"));
}

std::vector<std::string> DockerArgv(const ContainerCommand& image) {
  std::vector<std::string> argv = image.entrypoint.value_or(std::vector<std::string>{});
  const std::vector<std::string> cmd = image.cmd.value_or(std::vector<std::string>{});
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  return argv;
}

std::vector<std::string> OverriddenArgv(const ContainerCommand& image,
                                        const ContainerCommand& override_of) {
  if (override_of.entrypoint.has_value()) {
    return DockerArgv(ContainerCommand{override_of.entrypoint, override_of.cmd});
  }
  return DockerArgv(ContainerCommand{image.entrypoint,
                                     override_of.cmd.has_value() ? override_of.cmd : image.cmd});
}

}  // namespace attune::testing
