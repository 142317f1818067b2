// The dashboard's live event streams (GET /api/jobs/<id>/events/stream): server-sent events of
// one job's events, polled from the JobsSource, at most max_streams at once. Internal to
// HttpServer, which checks that the caller may see the job before it opens a stream.
#ifndef ATTUNE_SERVER_HTTP_EVENT_STREAMS_H_
#define ATTUNE_SERVER_HTTP_EVENT_STREAMS_H_

#include <httplib.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "server/http/jobs_source.h"

namespace attune::http {

class EventStreams {
 public:
  // At most `max_streams` (> 0) streams are served at once; `source` outlives this.
  EventStreams(JobsSource* source, int max_streams);

  // Makes `res` a stream of job `id`'s events after sequence `after`: every new event as an SSE
  // message (id, event type, the event's JSON), a keepalive comment after 15 s of silence, and
  // the end of the stream after the job's terminal state. HTTP 503 with Retry-After when
  // max_streams are open or Stop() was called.
  void Open(const std::string& id, int64_t after, httplib::Response& res);

  // Ends every open stream within one poll interval (250 ms); later Opens get 503.
  void Stop();

 private:
  class Slot;
  struct Stream;

  std::unique_ptr<Slot> TryOpen();
  bool Turn(Stream& stream, httplib::DataSink& sink);
  bool AllEventsSent(const Stream& stream);

  JobsSource* const source_;
  const int max_streams_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int open_ ABSL_GUARDED_BY(mu_) = 0;  // Slots alive, at most max_streams_
};

}  // namespace attune::http

#endif  // ATTUNE_SERVER_HTTP_EVENT_STREAMS_H_
