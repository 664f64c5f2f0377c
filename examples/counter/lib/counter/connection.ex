defmodule Counter.Connection do
  @moduledoc """
  One client connection: a line-based protocol (`Counter.Protocol`), one line
  in, one line out, for as long as the client keeps the socket open.

  A GenServer on an `active: :once` socket: between lines the process waits in
  `:gen_server`'s loop, not in this module's code, so the connection survives
  a hot upgrade that replaces `Counter.Protocol` (or this module).
  """
  use GenServer, restart: :temporary

  def start_link(socket), do: GenServer.start_link(__MODULE__, socket)

  @impl true
  def init(socket), do: {:ok, socket}

  @impl true
  def handle_info(:go, socket) do
    :ok = :inet.setopts(socket, active: :once)
    {:noreply, socket}
  end

  def handle_info({:tcp, socket, line}, socket) do
    reply = Counter.Protocol.handle(String.trim(line))
    :ok = :gen_tcp.send(socket, [reply, "\n"])
    :ok = :inet.setopts(socket, active: :once)
    {:noreply, socket}
  end

  def handle_info({:tcp_closed, socket}, socket), do: {:stop, :normal, socket}
  def handle_info({:tcp_error, socket, _reason}, socket), do: {:stop, :normal, socket}
end
