// attune-render: what a model will see for one chat record (server/tools/render_command.h),
// before any GPU time is spent. Runs locally, beside the model and data files; no server.
//
//   attune-render --model DIR --data FILE [--record N] [--train-on-inputs]
//
// Exit codes: 0 printed; 2 usage errors and INVALID_ARGUMENT (a bad record names file, line and
// field); 1 other errors.
#include <iostream>

#include "CLI/CLI.hpp"
#include "server/tools/render_command.h"

int main(int argc, char** argv) {
  CLI::App app{"attune-render: the text, trained spans and ids a chat record becomes"};
  attune::tools::RenderFlags flags;
  attune::tools::AddRenderFlags(&app, &flags);
  CLI11_PARSE(app, argc, argv);
  absl::StatusOr<std::string> report = attune::tools::RenderReport(flags);
  if (!report.ok()) {
    std::cerr << "attune-render: " << report.status() << "\n";
    return report.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  std::cout << *report;
  return 0;
}
