#include "server/http/event_streams.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/http/json_views.h"

namespace attune::http {
namespace {

constexpr int kEventsPerTurn = 1000;
constexpr auto kPollInterval = std::chrono::milliseconds(250);
constexpr auto kHeartbeat = std::chrono::seconds(15);

void ReplyBusy(httplib::Response& res, int max_streams) {
  const std::string body =
      nlohmann::json{{"error", absl::StrCat("too many event streams: at most ", max_streams,
                                            " are served at once; retry later, or poll "
                                            "/api/jobs/<id>/events")}}
          .dump();
  res.status = 503;
  res.set_header("Retry-After", "1");
  res.set_header("Cache-Control", "no-store");
  res.set_header("Connection", "close");
  res.set_content_provider(body.size(), "application/json",
                           [body](size_t offset, size_t length, httplib::DataSink& sink) {
                             sink.write(body.data() + offset, length);
                             return false;
                           });
}

}  // namespace

// Holds one of the max_streams places for as long as a stream is open.
class EventStreams::Slot {
 public:
  explicit Slot(EventStreams* streams) : streams_(streams) {}
  ~Slot() {
    absl::MutexLock lock(&streams_->mu_);
    --streams_->open_;
  }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;

 private:
  EventStreams* const streams_;
};

// One open stream, owned by its content provider (and so by httplib's Response, which the
// serving thread destroys before the server's Shutdown returns).
struct EventStreams::Stream {
  std::string job_id;
  int64_t cursor = 0;  // the last sequence sent
  std::chrono::steady_clock::time_point last_write;
  std::unique_ptr<Slot> slot;
};

EventStreams::EventStreams(JobsSource* source, int max_streams)
    : source_(source), max_streams_(max_streams) {}

std::unique_ptr<EventStreams::Slot> EventStreams::TryOpen() {
  absl::MutexLock lock(&mu_);
  if (stopping_ || open_ >= max_streams_) return nullptr;
  ++open_;
  return std::make_unique<Slot>(this);
}

void EventStreams::Stop() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
}

void EventStreams::Open(const std::string& id, int64_t after, httplib::Response& res) {
  std::unique_ptr<Slot> slot = TryOpen();
  if (slot == nullptr) return ReplyBusy(res, max_streams_);
  auto stream = std::make_shared<Stream>();
  stream->job_id = id;
  stream->cursor = after;
  stream->last_write = std::chrono::steady_clock::now();
  stream->slot = std::move(slot);
  res.set_header("Cache-Control", "no-store");
  res.set_header("Connection", "close");
  // Returning false ends the stream and makes httplib close the connection.
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, stream](size_t, httplib::DataSink& sink) { return Turn(*stream, sink); });
}

// Writes what is new (or a keepalive), then waits up to kPollInterval. Returns false when the
// stream is over: the client went away or did not take a write within the write timeout, the
// job's last event has been sent (then after the end-of-stream chunk), or Stop() was called.
bool EventStreams::Turn(Stream& stream, httplib::DataSink& sink) {
  if (!sink.is_writable()) return false;
  absl::StatusOr<std::vector<JobEventView>> events =
      source_->ListEvents(stream.job_id, stream.cursor, kEventsPerTurn);
  if (!events.ok()) return false;
  std::string out;
  bool over = false;
  for (const JobEventView& event : *events) {
    absl::StrAppend(&out, "id: ", event.sequence, "\nevent: ", event.type,
                    "\ndata: ", EventToJson(event).dump(), "\n\n");
    stream.cursor = event.sequence;
    over |= event.type == "state" && IsTerminalState(event.state);
  }
  if (events->empty()) over = AllEventsSent(stream);
  const auto now = std::chrono::steady_clock::now();
  if (out.empty() && now - stream.last_write > kHeartbeat) out = ": keepalive\n\n";
  if (!out.empty()) {
    if (!sink.write(out.data(), out.size())) return false;
    stream.last_write = now;
  }
  if (!over) {
    absl::MutexLock lock(&mu_);
    over = mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::FromChrono(kPollInterval));
  }
  if (!over) return true;
  sink.done();
  return false;
}

// True when the job is over and the stream has sent its every event. The state is read before
// the events: the store writes a state and its event in one transaction, so a terminal state
// means its event is already listed.
bool EventStreams::AllEventsSent(const Stream& stream) {
  absl::StatusOr<JobView> job = source_->GetJob(stream.job_id);
  if (!job.ok() || !IsTerminalState(job->state)) return false;
  absl::StatusOr<std::vector<JobEventView>> rest =
      source_->ListEvents(stream.job_id, stream.cursor, 1);
  return rest.ok() && rest->empty();
}

}  // namespace attune::http
