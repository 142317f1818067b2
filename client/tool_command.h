// Commands of `attune` that are separate programs installed beside it, as `git foo` runs
// git-foo: `attune render ARGS` runs `attune-render ARGS`.
//
// Why a separate program: rendering a chat record needs the engine's tokenizer and chat
// template renderer (server/engine/), and the client links no server code (layers depend one
// way; tests/http_layering_test.cc checks it). So the engine's tool does the work, and the
// client only finds it and hands over its arguments.
#ifndef ATTUNE_CLIENT_TOOL_COMMAND_H_
#define ATTUNE_CLIENT_TOOL_COMMAND_H_

#include <string>
#include <vector>

namespace attune::client {

// The path of `program` in the directory of the running executable (/proc/self/exe), if it is
// there and executable; else `program` itself, for execvp to look up on $PATH.
std::string SiblingProgram(const std::string& program);

// Replaces this process with SiblingProgram(program) run with `args` (argv[0] is `program`).
// Returns only when that fails: 127 (as a shell does for a command not found), after printing
// "attune: cannot run PROGRAM: REASON" to stderr.
int ExecSiblingProgram(const std::string& program, const std::vector<std::string>& args);

}  // namespace attune::client

#endif  // ATTUNE_CLIENT_TOOL_COMMAND_H_
