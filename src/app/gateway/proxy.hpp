// Relaying one client request's answer to its client (attempts.hpp decides the attempts): whole, or
// as SSE event by event with keep-alive comments. Its stream begins with the first upstream event or
// keep-alive comment; the overhead header is stamped just before the first byte goes out.
//
//     ClientRelay relay(ex, body.wants_usage());
//     co_await try_targets(gw, request, relay);
//     pass.charge(relay.usage);   // the tokens the upstream reported, for the client key's limit
//
// The caller holds the relay in its own coroutine frame: a proxy() coroutine around it cost every
// proxied request a frame of its own.
#pragma once

#include "app/gateway/attempts.hpp"

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace agente::gateway {

class ClientRelay final : public Receiver {
public:
    // `wants_usage`: the client asked for the usage chunk; otherwise the one the gateway asked for on
    // its behalf is not passed on, and the client gets the stream OpenAI would send it.
    ClientRelay(Exchange& ex, bool wants_usage) : ex_(ex), wants_usage_(wants_usage) {}

    asio::awaitable<error_code> whole(int status, std::string& body, std::string& content_type) override;
    asio::awaitable<error_code> events(std::span<const std::string_view> texts, bool last) override;
    asio::awaitable<bool> silence() override;
    asio::awaitable<void> end_stream() override;
    asio::awaitable<void> stream_broken(const Failure& f) override;
    asio::awaitable<void> failed(const Failure& f) override;
    bool started() const override { return ex_.started(); }

private:
    void note_overhead();
    asio::awaitable<error_code> start_stream();
    asio::awaitable<error_code> send_batch(bool last);
    asio::awaitable<error_code> start_and_send_batch(bool last);
    std::string_view missing_done() const;

    Exchange& ex_;
    bool wants_usage_;
    std::string batch_;
    std::string joined_;   // an event's data lines joined, when it has several (event_data())
    bool done_seen_ = false;
};

}  // namespace agente::gateway
