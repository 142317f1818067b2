// The argv that each container runtime runs for attuned, read from the repository's Dockerfile,
// deploy/docker-compose.yml and deploy/k8s/deployment.yaml and combined the way the runtime
// combines them:
//
//   Docker:      ENTRYPOINT + CMD (of the last stage; an ENTRYPOINT there resets the base
//                image's CMD).
//   Compose:     `entrypoint` replaces ENTRYPOINT and drops the image's CMD; `command` replaces
//                CMD.
//   Kubernetes:  `command` replaces ENTRYPOINT and drops the image's CMD; `args` replaces CMD.
//
// Only the exec (JSON array) form of ENTRYPOINT and CMD is accepted: the shell form runs
// `/bin/sh -c`, which the deploy files must not depend on. Plain functions; thread-safe.
#ifndef ATTUNE_TESTS_DEPLOY_ARGV_H_
#define ATTUNE_TESTS_DEPLOY_ARGV_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace attune::testing {

// An image's or a container's ENTRYPOINT and CMD; nullopt = not set there.
struct ContainerCommand {
  std::optional<std::vector<std::string>> entrypoint;
  std::optional<std::vector<std::string>> cmd;
};

// The final stage's exec-form ENTRYPOINT and CMD in the Dockerfile at `path`. NOT_FOUND when the
// file cannot be read, INVALID_ARGUMENT for a shell-form or malformed instruction or a final
// stage without an ENTRYPOINT.
absl::StatusOr<ContainerCommand> ReadDockerfile(const std::string& path);

// `entrypoint` and `command` of `service` in the compose file at `path` (a string is split at
// whitespace, as Compose does without quotes). NOT_FOUND without the file or the service.
absl::StatusOr<ContainerCommand> ReadComposeService(const std::string& path,
                                                    const std::string& service);

// `command` and `args` of the container named `container` in the Deployment at `path`.
// NOT_FOUND without the file or the container.
absl::StatusOr<ContainerCommand> ReadDeploymentContainer(const std::string& path,
                                                         const std::string& container);

// What `docker run IMAGE` runs.
std::vector<std::string> DockerArgv(const ContainerCommand& image);
// What Compose and Kubernetes run, given the image and the service's or container's override
// (entrypoint/command for Compose and command/args for Kubernetes map onto the same rule).
std::vector<std::string> OverriddenArgv(const ContainerCommand& image,
                                        const ContainerCommand& override_of);

}  // namespace attune::testing

#endif  // ATTUNE_TESTS_DEPLOY_ARGV_H_
