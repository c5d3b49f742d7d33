// An HTTP/1.1 client for upstream providers on the worker's own loop: plain TCP or TLS (verified
// against the system CA store or the provider's tls_ca_file, with SNI and the host name),
// connections kept alive and reused per worker. Beast stays
// in http_client.cpp; this header is what the rest of the gateway sees.
#pragma once

#include "app/gateway/settings.hpp"

#include <agente/handler.hpp>

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace agente::gateway {

// Idle keep-alive connections of one worker, by upstream host.
class ConnectionPool {
public:
    virtual ~ConnectionPool() = default;
    virtual std::size_t idle() const = 0;
};
// `private_ca_files` (the providers' tls_ca_file) are read here, at the worker's start, so that no
// call reads a file on the loop.
std::shared_ptr<ConnectionPool> make_connection_pool(asio::any_io_executor executor, int max_idle_per_host,
                                                     const std::vector<std::string>& private_ca_files);

struct CallTimeouts {
    milliseconds connect;       // DNS, TCP and TLS handshake
    milliseconds first_byte;    // from the request sent to the response head received
    milliseconds total;         // the whole call, body included
};

// Why a call failed; the gateway maps these to 502/504 and to retries. `tls`: the upstream's
// certificate was refused (untrusted chain, or not for this host name).
enum class CallError { none, connect, timeout, io, protocol, tls };
std::string_view call_error_name(CallError e);

// One request/response over a pooled connection. Destroying the call before the body was read to
// the end closes its connection: that is how a client that went away cancels the upstream at once.
class UpstreamCall {
public:
    UpstreamCall(ConnectionPool& pool, const Endpoint& endpoint, CallTimeouts timeouts);
    ~UpstreamCall();
    UpstreamCall(const UpstreamCall&) = delete;
    UpstreamCall& operator=(const UpstreamCall&) = delete;

    // Connects (or reuses), sends the request and reads the response head. `header_lines` are the
    // request's own fields, whole "Name: value\r\n" lines, in pieces written one after another. The
    // request is built when send() is called (it is not a coroutine): the pieces need to live only
    // until it returns.
    asio::awaitable<CallError> send(std::string_view method, std::string_view path,
                                    std::span<const std::string_view> header_lines, std::string_view body);
    int status() const;
    // The answer's header fields the gateway looks at ("" when absent): the only ones kept.
    const std::string& content_type() const;
    const std::string& retry_after() const;
    std::string take_content_type();   // content_type() moved out: "" after

    // The next piece of the body as it arrives into `out` (replaced). Returns false at the end of the
    // body or on error (see error()); `silence` set when nothing came for `wait` (the call goes on).
    asio::awaitable<bool> read_some(std::string& out, milliseconds wait, bool& silence);
    // The whole body into `out`, when all of it came already (a small answer comes with its head):
    // true, and nothing to await. Otherwise false, and read_all() reads the rest.
    bool take_body(std::string& out);
    // The rest of the body.
    asio::awaitable<CallError> read_all(std::string& out);

    CallError error() const;
    bool body_done() const;     // the answer's body ended with what read_some last gave
    bool reused() const;        // sent over a kept-alive connection

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace agente::gateway
