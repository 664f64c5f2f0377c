defmodule PathDeps.Application do
  @moduledoc false
  use Application
  require Logger

  @impl true
  def start(_type, _args) do
    port = String.to_integer(System.get_env("PORT", "4000"))
    Logger.info("path_deps #{PathDeps.Router.version()} listening on port #{port}")

    children = [
      {Task.Supervisor, name: PathDeps.ConnSupervisor},
      {PathDeps.Server, port: port}
    ]

    Supervisor.start_link(children, strategy: :one_for_one, name: PathDeps.Supervisor)
  end

  @impl true
  def prep_stop(state) do
    Logger.info("path_deps: application stopping")
    state
  end

  @impl true
  def stop(_state) do
    Logger.info("path_deps: application stopped")
    Logger.flush()
  end
end
