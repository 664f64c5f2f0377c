defmodule ZlibNif.Application do
  @moduledoc false
  use Application
  require Logger

  @impl true
  def start(_type, _args) do
    port = String.to_integer(System.get_env("PORT", "4000"))
    Logger.info("zlib_nif on zlib #{ZlibNif.zlib_version()}, listening on port #{port}")

    children = [
      {Task.Supervisor, name: ZlibNif.ConnSupervisor},
      {ZlibNif.Server, port: port}
    ]

    Supervisor.start_link(children, strategy: :one_for_one, name: ZlibNif.Supervisor)
  end

  @impl true
  def stop(_state) do
    Logger.info("zlib_nif: application stopped")
    Logger.flush()
  end
end
