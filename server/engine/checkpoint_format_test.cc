// Checkpoints as PEFT writes them: trains the tiny parity models for two steps and compares the
// adapter's tensor keys, shapes and adapter_config.json fields with what PEFT itself saved for
// the same models (tests/fixtures/parity/peft_reference.txt, made by make_parity.py; for DoRA,
// the adapter PEFT saved in tests/golden/dora, made by make_dora_goldens.py).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "nlohmann/json.hpp"
#include "server/engine/model.h"
#include "server/engine/safetensors.h"
#include "server/engine/tensor_file.h"
#include "server/engine/trainer.h"

namespace attune::engine {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct PeftReference {
  std::map<std::string, std::vector<int64_t>> keys;  // adapter_model.safetensors key -> shape
  json config;                                       // adapter_config.json
};

// Reads the section "=== <name>: ..." of peft_reference.txt.
PeftReference ReadReference(const std::string& name) {
  std::ifstream in("tests/fixtures/parity/peft_reference.txt");
  std::string line;
  PeftReference ref;
  bool in_section = false, in_keys = false, in_config = false;
  std::string config_text;
  while (std::getline(in, line)) {
    if (line.rfind("=== ", 0) == 0) {
      if (in_section) break;
      in_section = line.rfind("=== " + name + ":", 0) == 0;
      continue;
    }
    if (!in_section) continue;
    if (line == "adapter_model.safetensors keys:") {
      in_keys = true;
      continue;
    }
    if (line == "adapter_config.json:") {
      in_keys = false;
      in_config = true;
      continue;
    }
    if (in_keys) {
      std::istringstream fields(line);
      std::string key, shape_text;
      fields >> key;
      std::getline(fields, shape_text, ']');
      std::vector<int64_t> shape;
      std::string digits;
      for (char c : shape_text + ",") {
        if (std::isdigit(static_cast<unsigned char>(c))) {
          digits += c;
        } else if (!digits.empty()) {
          shape.push_back(std::stoll(digits));
          digits.clear();
        }
      }
      ref.keys[key] = shape;
    } else if (in_config) {
      config_text += line + "\n";
      if (line == "}") in_config = false;
    }
  }
  ref.config = json::parse(config_text);
  return ref;
}

// The keys, shapes and adapter_config.json of an adapter directory PEFT saved.
PeftReference ReadPeftDir(const std::string& dir) {
  PeftReference ref;
  auto file = SafetensorsFile::Open(dir + "/adapter_model.safetensors");
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return ref;
  for (const std::string& name : (*file)->Names()) ref.keys[name] = (*file)->Find(name)->shape;
  ref.config = json::parse(std::ifstream(dir + "/adapter_config.json"));
  return ref;
}

// A word-level tokenizer over "w3".."w<vocab-1>" with <pad>=0, <s>=1, </s>=2.
std::string WordLevelTokenizer(int vocab) {
  json v = {{"<pad>", 0}, {"<s>", 1}, {"</s>", 2}};
  json added = json::array();
  for (int id = 0; id < 3; ++id) {
    added.push_back({{"id", id},
                     {"content", id == 0   ? "<pad>"
                                 : id == 1 ? "<s>"
                                           : "</s>"},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  for (int id = 3; id < vocab; ++id) v["w" + std::to_string(id)] = id;
  return json{{"version", "1.0"},
              {"truncation", nullptr},
              {"padding", nullptr},
              {"added_tokens", added},
              {"normalizer", nullptr},
              {"pre_tokenizer", {{"type", "WhitespaceSplit"}}},
              {"post_processor", nullptr},
              {"decoder", nullptr},
              {"model", {{"type", "WordLevel"}, {"vocab", v}, {"unk_token", "<pad>"}}}}
      .dump();
}

class NullObserver : public TrainingObserver {
 public:
  void OnStep(const StepMetrics&) override {}
  void OnEval(const EvalMetrics&) override {}
  void OnCheckpoint(const CheckpointInfo& c) override { last = c; }
  void OnWarning(const std::string&) override {}
  bool StopRequested() override { return false; }
  CheckpointInfo last;
};

class CheckpointFormatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("attune_checkpoint_format_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Copies a parity fixture and gives it a tokenizer and data; returns the model dir.
  std::string PrepareModel(const std::string& fixture, int vocab, const std::string& jsonl) {
    const fs::path model = dir_ / "model";
    fs::copy(fs::path("tests/fixtures/parity") / fixture, model, fs::copy_options::recursive);
    std::ofstream(model / "tokenizer.json") << WordLevelTokenizer(vocab);
    std::ofstream(dir_ / "train.jsonl") << jsonl;
    return model.string();
  }

  // Trains `steps` steps; returns the last checkpoint's directory (empty on failure).
  std::string Train(TrainSpec spec, int64_t steps, double learning_rate) {
    spec.train_path = (dir_ / "train.jsonl").string();
    spec.max_steps = steps;
    spec.batch_size = 2;
    spec.learning_rate = learning_rate;
    NullObserver observer;
    RunOptions options;
    options.output_dir = (dir_ / "out").string();
    auto result = RunTraining(spec, options, &observer);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? observer.last.dir : "";
  }

  // Trains two steps and checks the written checkpoint against PEFT's reference.
  void TrainAndCompare(TrainSpec spec, const PeftReference& ref) {
    const std::string dir = Train(spec, 2, 1e-3);
    ASSERT_FALSE(dir.empty());
    ASSERT_FALSE(ref.keys.empty());
    auto adapter = SafetensorsFile::Open(dir + "/adapter_model.safetensors");
    ASSERT_TRUE(adapter.ok()) << adapter.status();
    std::map<std::string, std::vector<int64_t>> ours;
    for (const std::string& name : (*adapter)->Names()) {
      ours[name] = (*adapter)->Find(name)->shape;
      EXPECT_EQ((*adapter)->Find(name)->dtype, DType::kF32) << name;
    }
    EXPECT_EQ(ours, ref.keys);

    json config = json::parse(std::ifstream(dir + "/adapter_config.json"));
    for (const char* field : {"peft_type", "task_type", "r", "lora_alpha", "bias", "use_rslora",
                              "fan_in_fan_out", "modules_to_save", "use_dora"}) {
      EXPECT_EQ(config[field], ref.config[field]) << field;
    }
    auto sorted = [](json list) {
      std::vector<std::string> v = list.get<std::vector<std::string>>();
      std::sort(v.begin(), v.end());
      return v;
    };
    EXPECT_EQ(sorted(config["target_modules"]), sorted(ref.config["target_modules"]));
    EXPECT_EQ(config["base_model_name_or_path"], spec.model_dir);

    json record = json::parse(std::ifstream(dir + "/attune.json"));
    EXPECT_EQ(record["lr_ratios"], json(spec.lr_ratios));
    EXPECT_EQ(record["step"], 2);
    EXPECT_EQ(record["data"]["train"]["sha256"].get<std::string>().size(), 64u);
  }

  fs::path dir_;
};

TEST_F(CheckpointFormatTest, RobertaClassifierMatchesPeft) {
  TrainSpec spec;
  spec.model_dir = PrepareModel("roberta_cls", 100,
                                "{\"text\": \"w5 w6 w7\", \"label\": 0}\n"
                                "{\"text\": \"w8 w9\", \"label\": 1}\n"
                                "{\"text\": \"w10 w11 w12 w13\", \"label\": 2}\n"
                                "{\"text\": \"w14\", \"label\": 1}\n");
  spec.task = Task::kSequenceClassification;
  spec.targets = {"q", "v"};
  spec.lora_rank = 4;
  spec.lora_alpha = 8;
  spec.lora_dropout = 0.1;
  spec.lr_ratios = {{"v", 4.0}};
  TrainAndCompare(spec, ReadReference("roberta_cls"));
}

// The roberta fixture's classification job, with DoRA on query and value.
TrainSpec RobertaDoraSpec(std::string model_dir) {
  TrainSpec spec;
  spec.model_dir = std::move(model_dir);
  spec.task = Task::kSequenceClassification;
  spec.targets = {"q", "v"};
  spec.method = Method::kDora;
  spec.lora_rank = 4;
  spec.lora_alpha = 8;
  spec.lr_ratios = {{"v", 4.0}};
  return spec;
}

const char kRobertaData[] =
    "{\"text\": \"w5 w6 w7\", \"label\": 0}\n"
    "{\"text\": \"w8 w9\", \"label\": 1}\n"
    "{\"text\": \"w10 w11 w12 w13\", \"label\": 2}\n"
    "{\"text\": \"w14\", \"label\": 1}\n";

// DoRA adds base_model.model.<module>.lora_magnitude_vector [out] beside A and B, and
// use_dora: true, exactly as PEFT 0.21 saves them.
TEST_F(CheckpointFormatTest, RobertaDoraClassifierMatchesPeft) {
  TrainSpec spec = RobertaDoraSpec(PrepareModel("roberta_cls", 100, kRobertaData));
  spec.lora_dropout = 0.1;
  PeftReference ref = ReadPeftDir("tests/golden/dora/peft_roberta_cls");
  EXPECT_EQ(ref.config.at("use_dora"), true);
  TrainAndCompare(spec, ref);
}

// What tests/golden/dora/check_peft_loads.py checks on a machine with PEFT: a trained DoRA
// adapter as attune wrote it, and attune's logits for the fixture's inputs from a fresh model
// that loaded that adapter, written beside it as attune_logits.safetensors (and copied, with the
// adapter, into $ATTUNE_DORA_EXPORT_DIR when that is set). The adapter must move the logits.
TEST_F(CheckpointFormatTest, DoraAdapterPredictionsForPeft) {
  const std::string model_dir = PrepareModel("roberta_cls", 100, kRobertaData);
  const std::string dir = Train(RobertaDoraSpec(model_dir), 40, 1e-2);
  ASSERT_FALSE(dir.empty());
  ModelOptions o;
  o.num_labels = 3;
  o.targets = {"q", "v"};
  o.method = Method::kDora;
  o.lora_rank = 4;
  o.lora_alpha = 8;
  auto model = LoadModel(model_dir, o);
  ASSERT_TRUE(model.ok()) << model.status();
  auto adapter = ReadTensorsFile(dir + "/adapter_model.safetensors");
  auto golden = ReadTensorsFile("tests/fixtures/parity/roberta_cls/golden.safetensors");
  ASSERT_TRUE(adapter.ok() && golden.ok());
  torch::NoGradGuard no_grad;
  for (TrainableParam& p : (*model)->TrainableParameters()) p.tensor.copy_(adapter->at(p.name));
  (*model)->SetTraining(false);
  const torch::Tensor ids = golden->at("input_ids"), mask = golden->at("attention_mask");
  const torch::Tensor logits = (*model)->Forward(ids, mask);
  EXPECT_GT((logits - golden->at("logits")).abs().max().item<double>(), 1e-2);
  ASSERT_TRUE(WriteTensorsFile(dir + "/attune_logits.safetensors",
                               {{"input_ids", ids}, {"attention_mask", mask}, {"logits", logits}},
                               {})
                  .ok());
  if (const char* out = std::getenv("ATTUNE_DORA_EXPORT_DIR")) {
    fs::create_directories(out);
    for (const char* f :
         {"adapter_model.safetensors", "adapter_config.json", "attune_logits.safetensors"}) {
      fs::copy_file(fs::path(dir) / f, fs::path(out) / f, fs::copy_options::overwrite_existing);
    }
  }
}

TEST_F(CheckpointFormatTest, LlamaCausalLmMatchesPeft) {
  TrainSpec spec;
  spec.model_dir = PrepareModel("llama_causal", 128,
                                "{\"prompt\": \"w5 w6\", \"completion\": \"w7 w8\"}\n"
                                "{\"prompt\": \"w9\", \"completion\": \"w10 w11 w12\"}\n"
                                "{\"text\": \"w20 w21 w22 w23\"}\n"
                                "{\"prompt\": \"w30 w31 w32\", \"completion\": \"w33\"}\n");
  spec.task = Task::kCausalLm;
  spec.targets = {"q", "v"};
  spec.lora_rank = 4;
  spec.lora_alpha = 8;
  spec.use_rslora = true;
  spec.lr_ratios = {{"v", 4.0}};
  TrainAndCompare(spec, ReadReference("llama_causal"));
}

}  // namespace
}  // namespace attune::engine
