#include "client/tool_command.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <system_error>

namespace attune::client {

std::string SiblingProgram(const std::string& program) {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return program;
  const std::filesystem::path beside = self.parent_path() / program;
  if (::access(beside.c_str(), X_OK) == 0) return beside.string();
  return program;
}

int ExecSiblingProgram(const std::string& program, const std::vector<std::string>& args) {
  const std::string path = SiblingProgram(program);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::cout.flush();
  ::execvp(path.c_str(), argv.data());
  std::cerr << "attune: cannot run " << program << ": " << std::strerror(errno)
            << " (it is installed beside attune, or on PATH)\n";
  return 127;
}

}  // namespace attune::client
