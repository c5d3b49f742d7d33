#pragma once
// An io_context whose pending work can be destroyed on purpose, before the objects it points into.
//
// A process that stops its loop (INT, a drain's deadline) leaves coroutines suspended: sessions,
// upstream calls. ~io_context destroys their frames, and each frame's destructors run then: an
// InFlight gives back its count in the scoreboard's slot, a stream its lease. The io_context is
// declared first in its owner so that everything built on it can still close against it, which
// makes it the last member destroyed: the shared memory and the tables those destructors touch are
// gone by then (ASan: a read of unmapped memory at every quick exit). The owner's destructor calls
// destroy_pending() first, while all of its members are alive.

#include <boost/asio/io_context.hpp>

namespace agente::core {

class OwnedIoContext : public boost::asio::io_context {
public:
    using boost::asio::io_context::io_context;

    // Destroys every handler not yet run (asio's own shutdown, which ~io_context repeats harmlessly).
    void destroy_pending() { shutdown(); }
};

}  // namespace agente::core
