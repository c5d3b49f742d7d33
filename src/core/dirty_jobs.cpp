#include "core/dirty_jobs.hpp"

#include "core/scoreboard.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

namespace agente::core {

void JobTable::add(std::string kind, JobHandler handler, JobOptions options) {
    if (kind.empty() || kind.size() > 0xffff) throw std::invalid_argument("a job kind is 1 to 65535 bytes");
    if (!handler) throw std::invalid_argument("job kind " + kind + " has no handler");
    kinds_[std::move(kind)] = Entry{std::move(handler), options};
}

const JobTable::Entry* JobTable::find(std::string_view kind) const {
    auto it = kinds_.find(kind);
    return it == kinds_.end() ? nullptr : &it->second;
}

std::vector<std::uint64_t> JobTable::idempotent_hashes() const {
    std::vector<std::uint64_t> out;
    for (const auto& [kind, entry] : kinds_)
        if (entry.options.idempotent) out.push_back(kind_hash(kind));
    return out;
}

bool Call::cancelled() const {
    return cancel.load(std::memory_order_relaxed) || past_deadline();
}

bool Call::past_deadline() const {
    return request.deadline_ns && monotonic_ns() >= request.deadline_ns;
}

void Call::set_cancelled() {
    {
        std::lock_guard lock(mutex);   // a send_chunk between its check and its wait must not miss it
        cancel = true;
    }
    room.notify_all();
}

void Call::release(std::size_t chunk_bytes) {
    if (chunk_bytes == 0) return;
    {
        std::lock_guard lock(mutex);
        unsent -= chunk_bytes;
    }
    room.notify_all();
}

void CallContext::send_chunk(std::string_view chunk) {
    if (chunk.empty()) return;
    if (!call_.request.streamed) {
        joined_.append(chunk);
        return;
    }
    {
        std::unique_lock lock(call_.mutex);
        auto has_room = [this] { return call_.unsent < chunk_buffer_limit || call_.cancel.load(); };
        if (call_.request.deadline_ns) {
            // steady_clock is CLOCK_MONOTONIC, the clock the caller's deadline is on.
            std::chrono::steady_clock::time_point deadline{std::chrono::nanoseconds(call_.request.deadline_ns)};
            call_.room.wait_until(lock, deadline, has_room);
        } else {
            call_.room.wait(lock, has_room);
        }
        if (call_.cancelled()) return;   // nobody reads it any more
        call_.unsent += chunk.size();
    }
    post_chunk_(dirty::frame(dirty::FrameType::chunk, call_.id, chunk), chunk.size());
}

Outcome run_job(Call& call, CallContext& context) {
    Outcome o;
    try {
        o.value = call.job->handler(context);
        if (!call.request.streamed) {
            std::string joined = context.take_joined();
            if (!joined.empty()) o.value.insert(0, joined);
        }
    } catch (const JobError& e) {
        o.code = e.code().empty() ? "error" : e.code();
        o.message = e.what();
    } catch (const std::exception& e) {
        o.code = "error";
        o.message = e.what();
        spdlog::error("Job {} failed: {}", call.request.kind, e.what());
    } catch (...) {
        o.code = "error";
        o.message = "unknown exception";
        spdlog::error("Job {} failed: unknown exception", call.request.kind);
    }
    return o;
}

JobThreads::JobThreads(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

JobThreads::~JobThreads() { stop_and_join(); }

void JobThreads::submit(std::function<void()> job) {
    {
        std::lock_guard lock(mutex_);
        jobs_.push_back(std::move(job));
    }
    wake_.notify_one();
}

void JobThreads::stop_and_join() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_)
        if (t.joinable()) t.join();
}

void JobThreads::run() {
    for (;;) {
        std::function<void()> job;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
            if (jobs_.empty()) return;   // stopping, nothing left
            job = std::move(jobs_.front());
            jobs_.pop_front();
        }
        job();
    }
}

}  // namespace agente::core
