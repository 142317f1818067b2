// The one progress bar of the `attune` CLI: `attune watch` (steps) and `attune download`
// (bytes) both draw it.
//
//   [###############...............]  50% 5/10 loss 0.5000 ETA 1:05
//
// On a terminal each Update rewrites the line in place ("\r", padded with spaces over what the
// previous line left); Finish ends it with a newline. Output that is not a terminal (a pipe, a
// file, --output json) gets no bar at all, so logs stay free of carriage returns.
//
// Thread safety: thread-compatible (one bar per output stream, used from one thread). The
// stream is not owned and must outlive the bar.
#ifndef ATTUNE_CLIENT_PROGRESS_BAR_H_
#define ATTUNE_CLIENT_PROGRESS_BAR_H_

#include <cstdint>
#include <ostream>
#include <string>

#include "absl/strings/string_view.h"

namespace attune::client {

// Where the bar is drawn.
enum class BarOutput {
  kTerminal,  // redrawn in place
  kPlain,     // not a terminal: nothing is written
};

class ProgressBar {
 public:
  // Draws on `out` in `width` columns of bar (>= 1).
  ProgressBar(std::ostream* out, BarOutput output, int width = 30);

  // The bar for `done` of `total` units followed by `detail` ("5/10 loss 0.5000"). `total` <= 0
  // means unknown: an empty bar and "?%". Writes nothing for BarOutput::kPlain.
  void Update(int64_t done, int64_t total, absl::string_view detail);

  // Ends the bar's line if one is showing (so that other output starts on a fresh line); a
  // later Update starts a new bar. Writes nothing when no bar is showing.
  void Finish();

  BarOutput output() const { return output_; }

  // One rendering, without "\r": "[#####.....]  50% detail"; pure, thread-safe.
  static std::string Render(int64_t done, int64_t total, int width, absl::string_view detail);

 private:
  // Constant after construction.
  std::ostream* const out_;
  const BarOutput output_;
  const int width_;

  size_t shown_length_ = 0;  // length of the line now on screen; 0 = none
};

// "0:42", "1:05", "1:02:03": seconds, rounded, as M:SS below an hour and H:MM:SS above.
std::string DurationText(double seconds);

}  // namespace attune::client

#endif  // ATTUNE_CLIENT_PROGRESS_BAR_H_
