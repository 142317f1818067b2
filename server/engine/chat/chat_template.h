// A model's chat template, found as transformers finds it: `chat_template.jinja` in the model
// directory, else tokenizer_config.json's "chat_template" (a string, or a list of named
// templates, of which "default" is used). The template's special-token variables (bos_token,
// eos_token, unk_token, pad_token, additional_special_tokens) come from tokenizer_config.json, as
// transformers passes them: only those that are set.
#ifndef ATTUNE_SERVER_ENGINE_CHAT_CHAT_TEMPLATE_H_
#define ATTUNE_SERVER_ENGINE_CHAT_CHAT_TEMPLATE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace attune::chat {

struct ChatTemplate {
  std::string source;          // the Jinja text
  std::string origin;          // the file it came from, for messages
  std::string variables_json;  // {"bos_token": "<s>", ...}: the special tokens that are set
};

// Reads the template of the model in `model_dir`, every file opened inside `data_roots`
// (common/confined_file.h; empty = no restriction). INVALID_ARGUMENT "model: DIR has no chat
// template (no chat_template.jinja, and tokenizer_config.json has no "chat_template"); chat
// records need one" when there is none, or naming the file and member when it is malformed.
absl::StatusOr<ChatTemplate> LoadChatTemplate(const std::string& model_dir,
                                              const std::vector<std::string>& data_roots);

// The same from the texts themselves (`jinja_file` empty = none), for tests and tools.
absl::StatusOr<ChatTemplate> ChatTemplateFromTexts(const std::string& tokenizer_config_json,
                                                   const std::string& jinja_file,
                                                   const std::string& origin);

}  // namespace attune::chat

#endif  // ATTUNE_SERVER_ENGINE_CHAT_CHAT_TEMPLATE_H_
