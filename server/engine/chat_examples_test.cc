// Chat records through the engine: CreateJob's check refuses bad conversations naming file, line
// and field; a chat job on a tiny Llama trains only the assistant's tokens and its loss goes down.
// With ATTUNE_CHAT_ADAPTER_OUT set, the trained adapter is copied there for
// tests/golden/chat/check_peft_loads.py (run on the GPU machine with PEFT).
#include "server/engine/chat_examples.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "gtest/gtest.h"
#include "server/engine/trainer.h"

namespace attune::engine {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Llama-3-like markers as added tokens, roles and w5..w127 as words (the fixture has 128 rows).
std::string ChatTokenizer() {
  json vocab = {{"<pad>", 0}, {"<s>", 1}, {"</s>", 2}, {"user", 3}, {"assistant", 4}};
  json added = json::array();
  for (auto [id, content] : {std::pair{0, "<pad>"}, {1, "<s>"}, {2, "</s>"}}) {
    added.push_back({{"id", id},
                     {"content", content},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  for (int id = 5; id < 128; ++id) vocab["w" + std::to_string(id)] = id;
  return json{{"version", "1.0"},
              {"truncation", nullptr},
              {"padding", nullptr},
              {"added_tokens", added},
              {"normalizer", nullptr},
              {"pre_tokenizer", {{"type", "WhitespaceSplit"}}},
              {"post_processor", nullptr},
              {"decoder", nullptr},
              {"model", {{"type", "WordLevel"}, {"vocab", vocab}, {"unk_token", "<pad>"}}}}
      .dump();
}

constexpr char kTemplate[] =
    "{{ bos_token }}{% for m in messages %}{{ ' ' + m.role + ' ' + m.content + ' ' + eos_token }}"
    "{% endfor %}";

class ChatExamplesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("attune_chat_examples_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    model_ = dir_ / "model";
    fs::copy("tests/fixtures/parity/llama_causal", model_, fs::copy_options::recursive);
    std::ofstream(model_ / "tokenizer.json") << ChatTokenizer();
    std::ofstream(model_ / "tokenizer_config.json")
        << json{{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"chat_template", kTemplate}}.dump();
  }
  void TearDown() override { fs::remove_all(dir_); }

  TrainSpec Spec(const std::string& jsonl) {
    std::ofstream(dir_ / "train.jsonl") << jsonl;
    TrainSpec spec;
    spec.model_dir = model_.string();
    spec.task = Task::kCausalLm;
    spec.train_path = (dir_ / "train.jsonl").string();
    spec.targets = {"q", "v"};
    return spec;
  }

  fs::path dir_, model_;
};

TEST_F(ChatExamplesTest, CheckSpecRefusesABadRecordNamingFileLineAndField) {
  TrainSpec spec = Spec(
      "{\"messages\": [{\"role\": \"user\", \"content\": \"w5\"}, "
      "{\"role\": \"assistant\", \"content\": \"w6\"}]}\n"
      "{\"messages\": [{\"role\": \"user\", \"content\": \"w5\"}, "
      "{\"role\": \"bot\", \"content\": \"w6\"}]}\n");
  EXPECT_EQ(CheckSpec(spec).status(),
            absl::InvalidArgumentError("train: " + spec.train_path +
                                       ":2: messages[1].role: unknown role 'bot'; expected "
                                       "system, user, assistant or tool"));
}

TEST_F(ChatExamplesTest, CheckSpecRefusesAConversationTheTemplateRaisesOn) {
  std::ofstream(model_ / "chat_template.jinja")
      << "{% if messages[0].role == 'system' %}{{ raise_exception('no system role') }}{% endif %}"
      << kTemplate;
  TrainSpec spec = Spec(
      "{\"messages\": [{\"role\": \"user\", \"content\": \"w5\"}, "
      "{\"role\": \"assistant\", \"content\": \"w6\"}]}\n\n"
      "{\"messages\": [{\"role\": \"system\", \"content\": \"w7\"}, "
      "{\"role\": \"user\", \"content\": \"w5\"}, {\"role\": \"assistant\", \"content\": "
      "\"w6\"}]}\n");
  EXPECT_EQ(CheckSpec(spec).status(),
            absl::InvalidArgumentError("train: " + spec.train_path +
                                       ":3: the chat template raised: TemplateError: no system "
                                       "role"));
}

TEST_F(ChatExamplesTest, OnlyAssistantTokensAndTheirEndOfTurnAreTrained) {
  auto tokenizer = Tokenizer::FromFile((model_ / "tokenizer.json").string());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  chat::ChatTemplate t{kTemplate, "test", R"({"bos_token": "<s>", "eos_token": "</s>"})"};
  auto renderer = chat::ChatRenderer::Create(t, {});
  ASSERT_TRUE(renderer.ok()) << renderer.status();
  auto rendered = (*renderer)->Render(
      R"({"messages": [{"role": "user", "content": "w5 w6"}, {"role": "assistant", "content": "w7"},
          {"role": "user", "content": "w8"}, {"role": "assistant", "content": "w9", "weight": 0},
          {"role": "user", "content": "w10"}, {"role": "assistant", "content": "w11 w12"}]})");
  ASSERT_TRUE(rendered.ok()) << rendered.status();
  // <s> user w5 w6 </s> assistant w7 </s> user w8 </s> assistant w9 </s> user w10 </s>
  // assistant w11 w12 </s>: no second BOS, EOS after each turn, weight 0 untrained.
  Example e = ChatExample(*rendered, **tokenizer, {});
  EXPECT_EQ(e.ids, (std::vector<int32_t>{1, 3, 5, 6, 2,  4, 7, 2,  3,  8, 2,
                                         4, 9, 2, 3, 10, 2, 4, 11, 12, 2}));
  EXPECT_EQ(e.loss_mask,
            (std::vector<uint8_t>{0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1}));
  ChatExampleOptions all;
  all.train_on_inputs = true;
  all.max_seq_len = 8;
  Example everything = ChatExample(*rendered, **tokenizer, all);
  EXPECT_EQ(everything.ids, (std::vector<int32_t>{1, 3, 5, 6, 2, 4, 7, 2}));
  EXPECT_EQ(everything.loss_mask, (std::vector<uint8_t>{0, 1, 1, 1, 1, 1, 1, 1}));
}

class LossObserver : public TrainingObserver {
 public:
  void OnStep(const StepMetrics& m) override { losses.push_back(m.train_loss); }
  void OnEval(const EvalMetrics&) override {}
  void OnCheckpoint(const CheckpointInfo& c) override { last = c; }
  void OnWarning(const std::string&) override {}
  bool StopRequested() override { return false; }
  std::vector<double> losses;
  CheckpointInfo last;
};

TEST_F(ChatExamplesTest, AChatJobOnATinyLlamaLearnsTheAssistantTurns) {
  std::string jsonl;
  for (int i = 0; i < 8; ++i) {
    const std::string q = "w" + std::to_string(20 + i), a = "w" + std::to_string(60 + i);
    jsonl +=
        "{\"messages\": [{\"role\": \"system\", \"content\": \"w5 w6\"}, {\"role\": \"user\", "
        "\"content\": \"" +
        q + " w7\"}, {\"role\": \"assistant\", \"content\": \"" + a + " " + a + " w8\"}]}\n";
  }
  TrainSpec spec = Spec(jsonl);
  spec.max_steps = 60;
  spec.batch_size = 4;
  spec.learning_rate = 3e-2;
  spec.targets = {"q", "k", "v", "o", "gate", "up", "down"};
  spec.lora_rank = 4;
  spec.lora_alpha = 8;
  LossObserver observer;
  RunOptions options;
  options.output_dir = (dir_ / "out").string();
  auto result = RunTraining(spec, options, &observer);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(observer.losses.size(), 60u);
  const double first = (observer.losses[0] + observer.losses[1]) / 2;
  const double last = (observer.losses[58] + observer.losses[59]) / 2;
  EXPECT_LT(last, 0.5 * first) << "first " << first << ", last " << last;
  ASSERT_TRUE(fs::exists(fs::path(observer.last.dir) / "adapter_model.safetensors"));
  if (const char* out = std::getenv("ATTUNE_CHAT_ADAPTER_OUT"); out != nullptr && *out) {
    fs::create_directories(out);
    fs::copy(observer.last.dir, out,
             fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  }
}

}  // namespace
}  // namespace attune::engine
