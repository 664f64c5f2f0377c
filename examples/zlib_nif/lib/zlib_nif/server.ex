defmodule ZlibNif.Server do
  @moduledoc """
  A minimal HTTP/1.1 server on `:gen_tcp`: `GET /?data` answers the CRC-32 of `data` (computed
  by the NIF), `GET /health` answers ok.
  """
  use Task, restart: :permanent

  def start_link(opts), do: Task.start_link(__MODULE__, :listen, [Keyword.fetch!(opts, :port)])

  def listen(port) do
    {:ok, socket} =
      :gen_tcp.listen(port, [:binary, packet: :http_bin, active: false, reuseaddr: true])

    accept(socket)
  end

  @doc "Status and body for a request."
  def handle("GET", "/health"), do: {200, "ok\n"}

  def handle("GET", "/" <> query) do
    data = query |> String.trim_leading("?")
    {200, "crc32(#{data}) = #{ZlibNif.crc32(data)}\n"}
  end

  def handle(_method, _path), do: {405, "method not allowed\n"}

  defp accept(socket) do
    {:ok, conn} = :gen_tcp.accept(socket)
    {:ok, pid} = Task.Supervisor.start_child(ZlibNif.ConnSupervisor, fn -> serve(conn) end)
    :ok = :gen_tcp.controlling_process(conn, pid)
    accept(socket)
  end

  defp serve(conn) do
    with {:ok, {:http_request, method, {:abs_path, path}, _version}} <-
           :gen_tcp.recv(conn, 0, 5_000),
         :ok <- skip_headers(conn) do
      {status, body} = handle(to_string(method), path)
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
    reason = if status == 200, do: "OK", else: "Method Not Allowed"

    [
      "HTTP/1.1 #{status} #{reason}\r\n",
      "content-type: text/plain; charset=utf-8\r\n",
      "content-length: #{byte_size(body)}\r\n",
      "connection: close\r\n\r\n",
      body
    ]
  end
end
