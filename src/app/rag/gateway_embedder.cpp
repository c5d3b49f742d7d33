// A batch of texts as one POST /embeddings through try_targets(), and its answer's vectors.
#include "app/rag/gateway_embedder.hpp"

#include "app/gateway/attempts.hpp"
#include "app/gateway/shared_state.hpp"
#include "app/json_text.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <simdjson.h>

#include <cmath>
#include <thread>

namespace agente::rag {

namespace {

using gateway::Failure;

struct BatchResult {
    bool ok = false;
    std::string error;
    std::vector<std::vector<float>> vectors;
};

std::string upstream_error(std::string_view body, int status) {
    nlohmann::json j = parse_json(body);
    if (j.is_object() && j.contains("error") && j["error"].is_object() && j["error"].contains("message") &&
        j["error"]["message"].is_string())
        return "upstream answered " + std::to_string(status) + ": " + j["error"]["message"].get<std::string>();
    return "upstream answered " + std::to_string(status);
}

// OpenAI's embeddings answer: {"data": [{"index": i, "embedding": [floats]}...]}, any order.
bool read_vectors(const std::string& body, std::size_t n, BatchResult& out) {
    simdjson::ondemand::parser parser;
    simdjson::padded_string padded(body);
    std::vector<std::vector<float>> vs(n);
    try {
        simdjson::ondemand::document doc = parser.iterate(padded);
        std::size_t next = 0;
        for (auto item : doc["data"].get_array()) {
            simdjson::ondemand::object o = item.get_object();
            std::size_t index = next++;
            std::vector<float> v;
            for (auto field : o) {
                std::string_view key = field.unescaped_key();
                if (key == "index") index = std::size_t(field.value().get_uint64().value());
                else if (key == "embedding")
                    for (double x : field.value().get_array()) v.push_back(float(x));
            }
            if (index >= n) {
                out.error = "upstream answered an embedding index out of range";
                return false;
            }
            vs[index] = std::move(v);
        }
    } catch (const simdjson::simdjson_error& e) {
        out.error = std::string("upstream answer is not an embeddings list: ") + e.what();
        return false;
    }
    for (auto& v : vs)
        if (v.empty()) {
            out.error = "upstream answered fewer embeddings than texts";
            return false;
        }
    for (auto& v : vs)
        if (v.size() != vs.front().size()) {
            out.error = "upstream answered embeddings of different sizes";
            return false;
        }
    out.vectors = std::move(vs);
    out.ok = true;
    return true;
}

class VectorsReceiver final : public gateway::Receiver {
public:
    explicit VectorsReceiver(std::size_t n) : n_(n) {}

    asio::awaitable<error_code> whole(int status, std::string& body, std::string&) override {
        done_ = true;
        if (status >= 300) result.error = upstream_error(body, status);
        else read_vectors(body, n_, result);
        co_return error_code{};
    }
    asio::awaitable<error_code> events(std::span<const std::string_view>, bool) override { co_return error_code{}; }
    asio::awaitable<bool> silence() override { co_return true; }
    asio::awaitable<void> end_stream() override { co_return; }
    asio::awaitable<void> stream_broken(const Failure& f) override {
        result.error = gateway::broken_stream_message(f);
        co_return;
    }
    asio::awaitable<void> failed(const Failure& f) override {
        std::string why = gateway::failure_message(f);
        result.error = f.provider.empty() ? why : f.provider + ": " + why;
        co_return;
    }
    bool started() const override { return done_; }

    BatchResult result;

private:
    std::size_t n_;
    bool done_ = false;
};

asio::awaitable<BatchResult> run_batch(std::shared_ptr<gateway::Gateway> gw, const gateway::ModelSettings* model,
                                       std::string body_text, std::size_t n) {
    std::string problem;
    std::optional<gateway::RequestBody> body = gateway::RequestBody::parse(body_text, problem);
    if (!body) {
        BatchResult refused;
        refused.error = problem;
        co_return refused;
    }
    VectorsReceiver rx(n);
    gateway::UpstreamRequest req;
    req.model = model;
    req.path = "/embeddings";
    req.body = &*body;
    co_await gateway::try_targets(*gw, std::move(req), rx);
    co_return std::move(rx.result);
}

class GatewayEmbedder final : public Embedder {
public:
    GatewayEmbedder(asio::any_io_executor ex, std::shared_ptr<gateway::Gateway> gw, gateway::ModelSettings model, int batch)
        : ex_(std::move(ex)), gw_(std::move(gw)), model_(std::move(model)), batch_(std::max(batch, 1)) {}

    const std::string& model() const override { return model_.name; }

    std::vector<std::vector<float>> embed(const std::vector<std::string>& texts,
                                          const std::function<bool()>& cancelled) override {
        std::vector<std::vector<float>> out;
        out.reserve(texts.size());
        for (std::size_t b = 0; b < texts.size(); b += std::size_t(batch_)) {
            if (cancelled && cancelled()) throw EmbeddingError("cancelled");
            std::size_t e = std::min(texts.size(), b + std::size_t(batch_));
            nlohmann::json body{{"model", model_.name},
                                {"input", std::vector<std::string>(texts.begin() + long(b), texts.begin() + long(e))},
                                {"encoding_format", "float"}};
            std::future<BatchResult> f =
                asio::co_spawn(ex_, run_batch(gw_, &model_, json_text(body), e - b), asio::use_future);
            BatchResult r = f.get();
            if (!r.ok) throw EmbeddingError("embedding model \"" + model_.name + "\": " + r.error);
            for (auto& v : r.vectors) {
                normalize(v);
                out.push_back(std::move(v));
            }
        }
        return out;
    }

private:
    asio::any_io_executor ex_;
    std::shared_ptr<gateway::Gateway> gw_;
    gateway::ModelSettings model_;   // a copy: the gateway's settings may be replaced by a reload
    int batch_;
};

}  // namespace

void normalize(std::vector<float>& v) {
    double sum = 0;
    for (float x : v) sum += double(x) * double(x);
    if (sum <= 0) return;
    float inv = float(1.0 / std::sqrt(sum));
    for (float& x : v) x *= inv;
}

std::unique_ptr<Embedder> make_gateway_embedder(asio::any_io_executor executor, std::shared_ptr<gateway::Gateway> gw,
                                                const gateway::ModelSettings& model, int batch_size) {
    return std::make_unique<GatewayEmbedder>(std::move(executor), std::move(gw), model, batch_size);
}

struct EmbeddingLoop::Impl {
    asio::io_context io{1};
    asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
    // Breakers of our own when none are lent.
    std::unique_ptr<SharedLayout> own_layout;
    std::unique_ptr<PrivateMemory> own_memory;
    gateway::SharedState own;
    std::shared_ptr<gateway::Gateway> gw;
    std::thread thread;
};

EmbeddingLoop::EmbeddingLoop(const Config& config, const gateway::SharedState* shared, int slot)
    : impl_(std::make_unique<Impl>()) {
    if (!shared) {
        impl_->own_layout = std::make_unique<SharedLayout>(1);
        impl_->own = gateway::declare_shared_state(*impl_->own_layout);
        impl_->own_memory = std::make_unique<PrivateMemory>(*impl_->own_layout);
        gateway::assign_breaker_cells(*impl_->own.breakers, gateway::load_gateway_settings(*config.app, config.app_source));
        shared = &impl_->own;
        slot = 0;
    }
    impl_->gw = gateway::make_gateway(impl_->io.get_executor(), config, *shared, slot);
    impl_->thread = std::thread([io = &impl_->io] { io->run(); });
}

EmbeddingLoop::~EmbeddingLoop() {
    impl_->work.reset();
    impl_->io.stop();
    impl_->thread.join();
}

std::unique_ptr<Embedder> EmbeddingLoop::embedder(const std::string& model, int batch_size) {
    const gateway::ModelSettings* m = impl_->gw->settings.model(model);
    if (!m) throw std::invalid_argument("no [models.\"" + model + "\"] in the configuration");
    return make_gateway_embedder(impl_->io.get_executor(), impl_->gw, *m, batch_size);
}

gateway::Gateway& EmbeddingLoop::gateway() { return *impl_->gw; }

}  // namespace agente::rag
