defmodule HelloWeb.Application do
  @moduledoc false
  use Application
  require Logger

  @impl true
  def start(_type, _args) do
    port = String.to_integer(System.get_env("PORT", "4000"))
    Logger.info("hello_web #{HelloWeb.Router.version()} listening on port #{port}")

    children = [
      {Task.Supervisor, name: HelloWeb.ConnSupervisor},
      {HelloWeb.Server, port: port}
    ]

    Supervisor.start_link(children, strategy: :one_for_one, name: HelloWeb.Supervisor)
  end

  @impl true
  def prep_stop(state) do
    Logger.info("hello_web: application stopping")
    state
  end

  # Runs after the supervision tree is down. Flush so the line reaches stdout
  # before the Logger application itself is stopped and the VM exits.
  @impl true
  def stop(_state) do
    Logger.info("hello_web: application stopped")
    Logger.flush()
  end
end
