// Renders conversations with a chat template exactly as transformers' apply_chat_template does,
// by running the reference engine itself: Debian's python3-jinja2 in a helper process
// (render_helper.py, compiled into the binary, says why and how). Each rendering also gives the
// spans to train on (UTF-8 byte offsets into the text): the template's {% generation %} blocks
// where it has them, else the assistant spans found by rendering.
//
// The helper never hangs or crashes its caller: every request has a deadline (the helper is
// killed when it passes), the helper's memory is capped (2 GiB), and a helper that dies is
// restarted for the next request. Its stderr goes to /dev/null; errors come back as values.
//
// Thread-safe: requests are serialized on one helper.
#ifndef ATTUNE_SERVER_ENGINE_CHAT_CHAT_RENDERER_H_
#define ATTUNE_SERVER_ENGINE_CHAT_CHAT_RENDERER_H_

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/engine/chat/chat_template.h"

namespace attune::chat {

struct ChatRendererOptions {
  // Debian's interpreter, which sees python3-jinja2 (never a virtualenv's or pyenv's).
  std::string python = "/usr/bin/python3";
  // The longest one conversation (or starting the helper) may take.
  absl::Duration timeout = absl::Seconds(20);
};

struct RenderedChat {
  std::string text;
  std::vector<std::pair<size_t, size_t>> spans;  // [begin, end) byte offsets into text, in order
  bool generation_blocks = false;                // spans came from {% generation %} blocks
};

class ChatRenderer {
 public:
  // Starts the helper and compiles `chat_template` in it. INVALID_ARGUMENT "model: ORIGIN: the
  // chat template does not compile: TemplateSyntaxError: ..." for a template Jinja rejects (an
  // unknown tag or filter); FAILED_PRECONDITION when the helper cannot run ("is python3-jinja2
  // installed?").
  static absl::StatusOr<std::unique_ptr<ChatRenderer>> Create(const ChatTemplate& chat_template,
                                                              const ChatRendererOptions& options);
  ~ChatRenderer();  // kills and reaps the helper
  ChatRenderer(const ChatRenderer&) = delete;
  ChatRenderer& operator=(const ChatRenderer&) = delete;

  // Renders one conversation (a chat::Conversation's JSON) with add_generation_prompt false.
  // `variables_json` adds template variables (a JSON object; "{}" for none). INVALID_ARGUMENT
  // "the chat template raised: TemplateError: ..." when the template raises or fails on it,
  // "the chat template took longer than 20s" past the deadline.
  absl::StatusOr<RenderedChat> Render(const std::string& conversation_json,
                                      const std::string& variables_json = "{}");

 private:
  ChatRenderer(ChatTemplate chat_template, ChatRendererOptions options);
  absl::Status StartLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StopLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends one line and returns the reply line; stops the helper on any failure.
  absl::StatusOr<std::string> ExchangeLocked(const std::string& line)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  const ChatTemplate template_;
  const ChatRendererOptions options_;

  absl::Mutex mu_;
  pid_t pid_ ABSL_GUARDED_BY(mu_) = -1;       // -1: no helper running
  int fd_ ABSL_GUARDED_BY(mu_) = -1;          // our end of the socket pair
  std::string pending_ ABSL_GUARDED_BY(mu_);  // bytes read past the last reply line
};

}  // namespace attune::chat

#endif  // ATTUNE_SERVER_ENGINE_CHAT_CHAT_RENDERER_H_
