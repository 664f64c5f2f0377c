defmodule Worker.Application do
  @moduledoc false
  use Application
  require Logger

  @impl true
  def start(_type, _args) do
    Supervisor.start_link([Worker.Ticker], strategy: :one_for_one, name: Worker.Supervisor)
  end

  @impl true
  def stop(_state) do
    Logger.info("worker: application stopped")
    Logger.flush()
  end
end
