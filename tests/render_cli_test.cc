// `attune render`: the real CLI, which runs attune-render beside it (client/tool_command.h), on
// a golden template's conversations (tests/golden/chat/smollm2: SmolLM2's template, a word-level
// tokenizer, transformers 5.17's renderings). What it prints must be what transformers renders:
// the text, the ids and the trained ids (the assistant mask) of the golden.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/attuned_process.h"

namespace attune::testing {
namespace {

const std::string kGolden = std::string(ATTUNE_SOURCE_DIR) + "/tests/golden/chat/smollm2";

// Line `n` (1-based) of `path`.
std::string Line(const std::string& path, int n) {
  std::istringstream in(ReadFile(path));
  std::string line;
  for (int i = 0; i < n && std::getline(in, line); ++i) {
  }
  return line;
}

struct Report {
  std::string text;              // the text section, ⟦ ⟧ removed
  std::vector<int64_t> ids;      // the ids line
  std::vector<uint8_t> trained;  // 1 where the id has a *
};

// Parses attune-render's report (server/tools/render_command.h).
Report Parse(const std::string& out) {
  Report r;
  const size_t text_begin = out.find("---\n", out.find("--- text")) + 4;
  const size_t ids_header = out.find("\n--- ", text_begin);
  r.text = absl::StrReplaceAll(out.substr(text_begin, ids_header + 1 - text_begin),
                               {{"⟦", ""}, {"⟧", ""}});
  std::istringstream ids(out.substr(out.find("---\n", ids_header + 1) + 4));
  std::string id;
  while (ids >> id) {
    const bool star = id.back() == '*';
    r.ids.push_back(std::stoll(star ? id.substr(0, id.size() - 1) : id));
    r.trained.push_back(star ? 1 : 0);
  }
  return r;
}

TEST(RenderCliTest, PrintsWhatTransformersRenders) {
  for (int record : {1, 2, 7, 40}) {
    SCOPED_TRACE(absl::StrCat("record ", record));
    CliResult render =
        RunCli("unused:1",
               {"render", "--model", kGolden, "--data", kGolden + "/conversations.jsonl",
                "--record", std::to_string(record)},
               60);
    ASSERT_EQ(render.exit_code, 0) << render.err;
    const nlohmann::json golden = nlohmann::json::parse(Line(kGolden + "/golden.jsonl", record));
    const Report report = Parse(render.out);
    EXPECT_EQ(report.text, golden["text"].get<std::string>() + "\n");
    EXPECT_EQ(report.ids, golden["ids"].get<std::vector<int64_t>>());
    EXPECT_EQ(report.trained, golden["mask"].get<std::vector<uint8_t>>());
  }
}

TEST(RenderCliTest, BadRecordNamesFileLineAndFieldWithExitCode2) {
  TempDir dir;
  const std::string data = dir.path() + "/chat.jsonl";
  std::ofstream(data) << "{\"messages\": [{\"role\": \"bot\", \"content\": \"hi\"}]}\n";
  CliResult render = RunCli("unused:1", {"render", "--model", kGolden, "--data", data}, 60);
  EXPECT_EQ(render.exit_code, 2);
  EXPECT_NE(render.err.find(data + ":1: messages[0].role: unknown role 'bot'"), std::string::npos)
      << render.err;
}

}  // namespace
}  // namespace attune::testing
