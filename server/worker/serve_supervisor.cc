// Where attuned serves the worker protocol (ServeSupervisor), and where it finds attune-worker.
#include <sys/socket.h>
#include <sys/un.h>

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "server/worker/supervisor.h"

namespace attune::worker {

absl::StatusOr<std::unique_ptr<grpc::Server>> ServeSupervisor(const std::string& socket_path,
                                                              Supervisor* supervisor,
                                                              std::string* address,
                                                              const std::string& tcp_address,
                                                              std::string* tcp_bound) {
  if (socket_path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--data-dir: the workers' socket ", socket_path, " is longer than a Unix socket path (",
        sizeof(sockaddr_un{}.sun_path) - 1, " bytes); use a shorter data directory"));
  }
  const std::filesystem::path dir = std::filesystem::path(socket_path).parent_path();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (!ec) {
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::replace, ec);
  }
  if (ec)
    return absl::InternalError(absl::StrCat("cannot create ", dir.string(), ": ", ec.message()));
  *address = "unix:" + socket_path;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(*address, grpc::InsecureServerCredentials());
  int tcp_port = 0;
  if (!tcp_address.empty()) {
    builder.AddListeningPort(tcp_address, grpc::InsecureServerCredentials(), &tcp_port);
  }
  builder.RegisterService(supervisor);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || (!tcp_address.empty() && tcp_port == 0)) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen for workers on ", *address, " ", tcp_address));
  }
  if (tcp_bound != nullptr && !tcp_address.empty()) {
    *tcp_bound = absl::StrCat(tcp_address.substr(0, tcp_address.rfind(':')), ":", tcp_port);
  }
  return server;
}

std::string DefaultWorkerBinary() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return (ec ? std::filesystem::path("attune-worker") : self.parent_path() / "attune-worker")
      .string();
}

}  // namespace attune::worker
