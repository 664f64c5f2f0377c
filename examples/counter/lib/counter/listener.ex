defmodule Counter.Listener do
  @moduledoc """
  Accepts TCP connections and hands each to a `Counter.Connection` process.

  The accept loop calls itself fully qualified (`__MODULE__.accept/1`), so a
  hot upgrade that loads a new version of this module moves the loop onto it
  at the next connection.
  """
  use Task, restart: :permanent

  def start_link(opts), do: Task.start_link(__MODULE__, :listen, [Keyword.fetch!(opts, :port)])

  def listen(port) do
    {:ok, socket} =
      :gen_tcp.listen(port, [:binary, packet: :line, active: false, reuseaddr: true])

    __MODULE__.accept(socket)
  end

  def accept(socket) do
    {:ok, conn} = :gen_tcp.accept(socket)

    {:ok, pid} = DynamicSupervisor.start_child(Counter.Connections, {Counter.Connection, conn})

    :ok = :gen_tcp.controlling_process(conn, pid)
    send(pid, :go)
    __MODULE__.accept(socket)
  end
end
