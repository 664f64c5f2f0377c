defmodule Web.Server do
  @moduledoc """
  A minimal HTTP/1.1 server on `:gen_tcp`: one request per connection,
  each connection handled in a task under `Web.ConnSupervisor`.
  """
  use Task, restart: :permanent

  def start_link(opts), do: Task.start_link(__MODULE__, :listen, [Keyword.fetch!(opts, :port)])

  def listen(port) do
    {:ok, socket} =
      :gen_tcp.listen(port, [:binary, packet: :http_bin, active: false, reuseaddr: true])

    accept(socket)
  end

  defp accept(socket) do
    {:ok, conn} = :gen_tcp.accept(socket)
    {:ok, pid} = Task.Supervisor.start_child(Web.ConnSupervisor, fn -> serve(conn) end)
    :ok = :gen_tcp.controlling_process(conn, pid)
    accept(socket)
  end

  defp serve(conn) do
    with {:ok, {:http_request, method, {:abs_path, path}, _version}} <-
           :gen_tcp.recv(conn, 0, 5_000),
         :ok <- skip_headers(conn) do
      [path | _query] = String.split(path, "?", parts: 2)
      {status, body} = Web.Router.handle(to_string(method), path)
      :gen_tcp.send(conn, response(status, body))
    end

    :gen_tcp.close(conn)
  end

  defp skip_headers(conn) do
    case :gen_tcp.recv(conn, 0, 5_000) do
      {:ok, :http_eoh} -> :ok
      {:ok, {:http_header, _, _, _, _}} -> skip_headers(conn)
      other -> {:error, other}
    end
  end

  defp response(status, body) do
    [
      "HTTP/1.1 #{status} #{reason(status)}\r\n",
      "content-type: text/plain; charset=utf-8\r\n",
      "content-length: #{byte_size(body)}\r\n",
      "connection: close\r\n\r\n",
      body
    ]
  end

  defp reason(200), do: "OK"
  defp reason(404), do: "Not Found"
  defp reason(405), do: "Method Not Allowed"
end
