// The app linked into the server. For now it serves the agent's liveness page; the LLM gateway and
// the agent endpoints plug in here through the same Router.
#include <agente/app.hpp>

namespace agente {

namespace {

class AgentApp final : public App {
public:
    void register_routes(Router& router, WorkerContext&) override {
        router.add("GET", "/", SyncHandler([](const Request&) {
            Response r;
            r.content_type = "text/plain; charset=utf-8";
            r.body = "Server is live";
            return r;
        }));
    }
};

}  // namespace

std::size_t app_shared_size() { return 4096; }
void register_app_sections() {}
std::unique_ptr<App> make_app() { return std::make_unique<AgentApp>(); }

}  // namespace agente
