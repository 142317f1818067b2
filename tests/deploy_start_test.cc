// The deploy files start attuned: for the Docker image, docker-compose and the Kubernetes
// Deployment, the test builds the exact argv that runtime runs (tests/deploy_argv.h), maps the
// program name to the built attuned, starts it, and checks that it prints "attuned listening
// on", answers gRPC health checks and /metrics, and exits 0 on SIGTERM.
//
// The argv names fixed ports (0.0.0.0:50051, :8080) and the volume /data. So that they collide
// with nothing and nothing is written outside a temporary directory, main() first moves this
// process into a sandbox (Linux namespaces; needs root, as the tests run): a private network
// namespace with only the loopback interface, and a private mount namespace whose root is a
// tmpfs with the real top-level directories bound into it, except /tmp and /data, which are
// fresh empty directories on that tmpfs (the checkout and the build directory are bound back
// in when they lie under /tmp). Every child (attuned, the attune CLI) inherits it.
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/attuned_process.h"
#include "tests/deploy_argv.h"
#include "tests/metrics_running_job.h"

namespace attune::testing {
namespace {

namespace fs = std::filesystem;

const std::string kSource = ATTUNE_SOURCE_DIR;

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

absl::Status BringUpLoopback() {
  const int sock = socket(AF_INET, SOCK_DGRAM, 0);
  if (sock < 0) return Errno("socket");
  ifreq request{};
  std::strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
  const bool up = ioctl(sock, SIOCGIFFLAGS, &request) == 0 &&
                  (request.ifr_flags |= IFF_UP, ioctl(sock, SIOCSIFFLAGS, &request) == 0);
  const int saved = errno;
  close(sock);
  errno = saved;
  return up ? absl::OkStatus() : Errno("bring up lo");
}

// Makes `root`/NAME stand for /NAME: a bind mount of a directory or file, a copy of a symlink.
absl::Status BindIntoRoot(const fs::path& entry, const fs::path& root) {
  const fs::path target = root / entry.filename();
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(entry, ec);
  if (fs::is_symlink(status)) {
    fs::create_symlink(fs::read_symlink(entry), target, ec);
    return ec ? absl::InternalError(absl::StrCat("symlink ", target.string(), ": ", ec.message()))
              : absl::OkStatus();
  }
  if (fs::is_directory(status)) {
    fs::create_directory(target, ec);
  } else if (fs::is_regular_file(status)) {
    std::ofstream{target};
  } else {
    return absl::OkStatus();  // sockets and devices at the top level: not needed
  }
  if (mount(entry.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    return Errno(absl::StrCat("bind ", entry.string()));
  }
  return absl::OkStatus();
}

// The checkout and the build directory, when they lie under /tmp (a CI clone may): opened before
// the tmpfs hides them, so that they can be bound back into the sandbox's /tmp.
struct KeptDir {
  fs::path path;  // canonical, under /tmp
  int fd = -1;    // O_PATH handle, valid across the tmpfs mount
};
std::vector<KeptDir> DirsUnderTmp() {
  std::vector<KeptDir> kept;
  for (const fs::path& dir :
       {fs::path(kSource), fs::path(ATTUNED_PATH).parent_path().parent_path()}) {
    std::error_code ec;
    const fs::path canonical = fs::canonical(dir, ec);
    if (ec) continue;
    const std::string text = canonical.string();
    if (text.rfind("/tmp/", 0) != 0) continue;
    bool covered = false;
    for (const KeptDir& k : kept) covered |= text.rfind(k.path.string() + "/", 0) == 0;
    if (!covered) kept.push_back({canonical, open(text.c_str(), O_PATH | O_DIRECTORY)});
  }
  return kept;
}

// Binds each kept directory to the same path inside the new root.
absl::Status BindKept(const std::vector<KeptDir>& kept, const fs::path& root) {
  for (const KeptDir& k : kept) {
    if (k.fd < 0) return absl::InternalError(absl::StrCat("cannot open ", k.path.string()));
    const fs::path target = root / k.path.relative_path();
    fs::create_directories(target);
    const std::string source = absl::StrCat("/proc/self/fd/", k.fd);
    if (mount(source.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      return Errno(absl::StrCat("bind ", k.path.string()));
    }
    close(k.fd);
  }
  return absl::OkStatus();
}

// Enters the sandbox described at the top. Must run before any thread starts.
absl::Status EnterSandbox() {
  if (unshare(CLONE_NEWNS | CLONE_NEWNET) != 0) return Errno("unshare(CLONE_NEWNS|CLONE_NEWNET)");
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    return Errno("make / private");
  if (absl::Status up = BringUpLoopback(); !up.ok()) return up;
  const std::vector<KeptDir> kept = DirsUnderTmp();
  // The new root lives on a tmpfs mounted over /tmp (only in this mount namespace).
  if (mount("tmpfs", "/tmp", "tmpfs", 0, "mode=1777") != 0) return Errno("tmpfs on /tmp");
  const fs::path root = "/tmp/root";
  fs::create_directory(root);
  for (const auto& entry : fs::directory_iterator("/")) {
    const std::string name = entry.path().filename().string();
    if (name == "tmp" || name == "data") continue;
    if (absl::Status bound = BindIntoRoot(entry.path(), root); !bound.ok()) return bound;
  }
  fs::create_directory(root / "tmp");
  fs::create_directory(root / "data");
  chmod((root / "tmp").c_str(), 01777);
  if (absl::Status bound = BindKept(kept, root); !bound.ok()) return bound;
  if (chroot(root.c_str()) != 0 || chdir("/") != 0) return Errno("chroot");
  return absl::OkStatus();
}

// Starts `argv` as a runtime would (the program mapped to the built attuned) and checks it.
void StartsServesAndStops(std::vector<std::string> argv, const std::string& runtime) {
  ASSERT_FALSE(argv.empty()) << runtime << " runs nothing";
  SCOPED_TRACE(absl::StrCat(runtime, " runs: ", absl::StrJoin(argv, " ")));
  ASSERT_EQ(fs::path(argv[0]).filename().string(), "attuned");
  argv[0] = ATTUNED_PATH;
  TempDir logs;
  std::unique_ptr<AttunedProcess> server =
      AttunedProcess::StartExact(argv, logs.path() + "/attuned.log");
  ASSERT_EQ(server->address(), "0.0.0.0:50051") << server->Log();
  EXPECT_EQ(server->http_address(), "0.0.0.0:8080");

  CliResult health = RunCli("127.0.0.1:50051", {"health"}, 30);
  EXPECT_EQ(health.exit_code, 0) << health.err;
  EXPECT_EQ(health.out, "SERVING\n");
  // What the Kubernetes readiness probe asks.
  CliResult ready = RunCli("127.0.0.1:50051", {"health", "--service", "attune.v1.Attune"}, 30);
  EXPECT_EQ(ready.exit_code, 0) << ready.err;
  EXPECT_EQ(ready.out, "SERVING\n");
  int status = 0;
  HttpGet("127.0.0.1:8080", "/metrics", &status);
  EXPECT_EQ(status, 200);

  EXPECT_EQ(server->StopWith(SIGTERM, 30), 0) << server->Log();
  EXPECT_TRUE(fs::is_regular_file("/data/attune.db")) << "the data dir is not the /data volume";
  for (const auto& entry : fs::directory_iterator("/data")) fs::remove_all(entry.path());
}

ContainerCommand Image() {
  absl::StatusOr<ContainerCommand> image = ReadDockerfile(kSource + "/Dockerfile");
  EXPECT_TRUE(image.ok()) << image.status();
  return image.value_or(ContainerCommand{});
}

TEST(DeployStartTest, DockerImageStarts) {
  StartsServesAndStops(DockerArgv(Image()), "docker run attune");
}

TEST(DeployStartTest, ComposeServiceStarts) {
  absl::StatusOr<ContainerCommand> service =
      ReadComposeService(kSource + "/deploy/docker-compose.yml", "attuned");
  ASSERT_TRUE(service.ok()) << service.status();
  StartsServesAndStops(OverriddenArgv(Image(), *service), "docker compose");
}

TEST(DeployStartTest, KubernetesDeploymentStarts) {
  absl::StatusOr<ContainerCommand> container =
      ReadDeploymentContainer(kSource + "/deploy/k8s/deployment.yaml", "attuned");
  ASSERT_TRUE(container.ok()) << container.status();
  StartsServesAndStops(OverriddenArgv(Image(), *container), "kubernetes");
}

// The combination rules themselves, on made-up commands.
TEST(DeployArgvTest, OverridesCombineAsTheRuntimesDo) {
  using Argv = std::vector<std::string>;
  const ContainerCommand image{Argv{"attuned"}, Argv{"--listen", "0.0.0.0:1"}};
  EXPECT_EQ(DockerArgv(image), (Argv{"attuned", "--listen", "0.0.0.0:1"}));
  // Only CMD replaced (compose `command`, Kubernetes `args`).
  EXPECT_EQ(OverriddenArgv(image, {std::nullopt, Argv{"--devices", "cpu"}}),
            (Argv{"attuned", "--devices", "cpu"}));
  // The entrypoint replaced: the image's CMD is dropped.
  EXPECT_EQ(OverriddenArgv(image, {Argv{"/bin/attuned"}, std::nullopt}), (Argv{"/bin/attuned"}));
  EXPECT_EQ(OverriddenArgv(image, {Argv{"x"}, Argv{"y"}}), (Argv{"x", "y"}));
  EXPECT_EQ(OverriddenArgv(image, {}), DockerArgv(image));
}

TEST(DeployArgvTest, DockerfileShellFormAndLaterStagesAreHandled) {
  TempDir dir;
  const std::string path = dir.path() + "/Dockerfile";
  std::ofstream(path) << "FROM a AS build\nENTRYPOINT [\"builder\"]\nCMD [\"x\"]\n"
                      << "FROM b\nCMD [\"ignored\"]\n# comment\nENTRYPOINT [\"attuned\", \\\n"
                      << "  \"--listen\", \"0.0.0.0:1\"]\n";
  absl::StatusOr<ContainerCommand> image = ReadDockerfile(path);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(DockerArgv(*image), (std::vector<std::string>{"attuned", "--listen", "0.0.0.0:1"}));
  std::ofstream(path) << "FROM b\nENTRYPOINT attuned --listen 0.0.0.0:1\n";
  EXPECT_EQ(ReadDockerfile(path).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace attune::testing

int main(int argc, char** argv) {
  // Before InitGoogleTest and before any thread: unshare(CLONE_NEWNS) needs a single thread.
  if (absl::Status sandbox = attune::testing::EnterSandbox(); !sandbox.ok()) {
    std::cerr << "deploy_start_test: cannot enter the sandbox (root and Linux namespaces are "
                 "needed): "
              << sandbox << std::endl;
    return 1;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
