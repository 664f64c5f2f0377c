defmodule Counter.Application do
  @moduledoc false
  use Application
  require Logger

  @impl true
  def start(_type, _args) do
    port = String.to_integer(System.get_env("PORT", "4000"))
    Logger.info("counter listening on port #{port}")

    children = [
      Counter.Server,
      {DynamicSupervisor, name: Counter.Connections, strategy: :one_for_one},
      {Counter.Listener, port: port}
    ]

    Supervisor.start_link(children, strategy: :one_for_one, name: Counter.Supervisor)
  end

  @impl true
  def stop(_state) do
    Logger.info("counter: application stopped")
    Logger.flush()
  end
end
