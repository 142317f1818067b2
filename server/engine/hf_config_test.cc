#include "server/engine/hf_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace attune::engine {
namespace {

using ::testing::HasSubstr;

TEST(HfConfigTest, ReadsTransformers4RopeSpellingAndDefaults) {
  auto c = ParseHfConfig(R"({"model_type": "llama", "architectures": ["LlamaForCausalLM"],
      "vocab_size": 128, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 8,
      "intermediate_size": 96, "rope_theta": 500000.0,
      "rope_scaling": {"type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                       "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}})",
                         "test");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->architecture, "LlamaForCausalLM");
  EXPECT_EQ(c->num_key_value_heads, 8);
  EXPECT_EQ(c->head_dim, 8);
  EXPECT_EQ(c->hidden_act, "silu");
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_EQ(c->rope.type, "llama3");
  EXPECT_DOUBLE_EQ(c->rope.theta, 500000.0);
  EXPECT_DOUBLE_EQ(c->rope.factor, 8.0);
  EXPECT_EQ(c->rope.original_max_position_embeddings, 8192);
}

TEST(HfConfigTest, ReadsTransformers5RopeParametersAndLabels) {
  auto c = ParseHfConfig(R"({"model_type": "qwen2", "vocab_size": 10, "hidden_size": 8,
      "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
      "intermediate_size": 16, "id2label": {"0": "a", "1": "b", "2": "c"},
      "rope_parameters": {"rope_type": "linear", "rope_theta": 1000.0, "factor": 2.0}})",
                         "test");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->qkv_bias);
  EXPECT_EQ(c->num_labels, 3);
  EXPECT_EQ(c->rope.type, "linear");
  EXPECT_DOUBLE_EQ(c->rope.theta, 1000.0);
}

// Token ids come as a number, a list (Llama 3's eos_token_id; the first counts) or null.
TEST(HfConfigTest, TokenIdsFromNumbersListsAndNull) {
  auto c = ParseHfConfig(R"({"model_type": "llama", "vocab_size": 10, "hidden_size": 8,
      "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16,
      "pad_token_id": null, "eos_token_id": [7, 9]})",
                         "test");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->pad_token_id.has_value());
  EXPECT_EQ(c->eos_token_id, 7);
  auto d = ParseHfConfig(R"({"model_type": "roberta", "vocab_size": 10, "hidden_size": 8,
      "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16,
      "pad_token_id": 1, "eos_token_id": 2})",
                         "test");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->pad_token_id, 1);
  EXPECT_EQ(d->eos_token_id, 2);
}

TEST(HfConfigTest, ErrorsNameTheField) {
  auto missing = ParseHfConfig(R"({"model_type": "bert", "vocab_size": 10})", "x/config.json");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(),
              HasSubstr("config.json (x/config.json): 'hidden_size' must be a positive integer"));
  auto rope = ParseHfConfig(R"({"model_type": "llama", "vocab_size": 10, "hidden_size": 8,
      "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16,
      "rope_scaling": {"type": "yarn", "factor": 4.0}})",
                            "t");
  EXPECT_EQ(rope.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(rope.status().message(), HasSubstr("one of default, linear, llama3 (got \"yarn\")"));
  auto gqa = ParseHfConfig(R"({"model_type": "llama", "vocab_size": 10, "hidden_size": 8,
      "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 3,
      "intermediate_size": 16})",
                           "t");
  EXPECT_THAT(gqa.status().message(),
              HasSubstr("'num_key_value_heads' must be a positive divisor"));
  EXPECT_EQ(ParseHfConfig("[1]", "t").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(LoadHfConfig("/nonexistent").status().message(), HasSubstr("no config.json"));
}

}  // namespace
}  // namespace attune::engine
