defmodule Web.Application do
  @moduledoc false
  use Application
  require Logger

  @impl true
  def start(_type, _args) do
    port = String.to_integer(System.get_env("PORT", "4000"))
    Logger.info("web listening on port #{port} (#{Application.get_env(:web, :server_mode)} mode)")

    children = [
      {Task.Supervisor, name: Web.ConnSupervisor},
      {Web.Server, port: port}
    ]

    Supervisor.start_link(children, strategy: :one_for_one, name: Web.Supervisor)
  end

  # Runs after the supervision tree is down; flush so the line is out before the VM exits.
  @impl true
  def stop(_state) do
    Logger.info("web: application stopped")
    Logger.flush()
  end
end
