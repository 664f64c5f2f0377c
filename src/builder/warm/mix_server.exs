# mix_server.exs: the Mix server of a warm builder (docs/warm-builder.md), `mix release_oci.serve`:
# one Erlang VM with Mix and the project loaded, kept between the builds of a warm builder, that
# runs the Mix part of each of them (Mix.Tasks.ReleaseOci.Assemble.assemble_all/0) as a new VM
# would. assemble.sh starts it (in the background, as the build user, in the build cache sources)
# and sends it the builds; it appends to the same single-quoted MIX_TASK as assemble_mix.exs, so
# no single quote may appear here either.
#
# In WARM_MIX_DIR: the server writes `pid` once it takes builds and removes it when it ends. A
# build is a file in `queue/` holding "PID DIR": PID is the build script (the server writes the
# build log to its fd 4, a copy of its stderr: /proc/PID/fd/4), DIR holds `env` (the build environment, as
# /proc/self/environ has it) and receives `status`: the exit code, or `unserved` when the build
# was not started (the script then builds in a VM of its own). SIGUSR2 says a build is queued;
# SIGUSR1 to PID says its status is written.
# A build that does not end with 0 ends the server after its status is written: the next build
# starts a fresh one, so nothing a failed build left in this VM can reach another build.
defmodule Mix.Tasks.ReleaseOci.Serve do
  @moduledoc false
  use Mix.Task

  def run(_args) do
    dir = System.fetch_env!("WARM_MIX_DIR")
    # What the launcher (elixir, erl) added to the environment it was started with: kept in
    # every build environment, as a new VM has it.
    started = read_env(Path.join(dir, "start.env"))
    launcher = for {k, v} <- System.get_env(), Map.get(started, k) != v, into: %{}, do: {k, v}
    :ok = :gen_event.add_handler(:erl_signal_server, Mix.Tasks.ReleaseOci.Serve.Wake, self())
    :ok = :os.set_signal(:sigusr2, :handle)
    write_new(Path.join(dir, "pid"), System.pid())
    IO.puts("release-oci Mix server #{System.pid()}: taking builds")
    loop(dir, launcher)
  end

  defp loop(dir, launcher) do
    queue = Path.join(dir, "queue")

    case queue |> File.ls!() |> Enum.reject(&String.starts_with?(&1, ".")) |> Enum.sort() do
      [] ->
        receive do
          :wake -> :ok
        after
          1000 -> :ok
        end

      [name | _] ->
        status = serve(Path.join(queue, name), launcher)

        IO.puts("build of #{name}: #{status}")

        if status != "0" do
          File.rm(Path.join(dir, "pid"))
          IO.puts("ending: a build did not end with 0")
          System.halt(0)
        end
    end

    loop(dir, launcher)
  end

  # One build: its environment, its log on the build script stderr (the group leader of the
  # build process, and the standard_error and user devices meanwhile), its status.
  defp serve(marker, launcher) do
    [pid, req] = marker |> File.read!() |> String.trim() |> String.split(" ", parts: 2)
    File.rm!(marker)

    status =
      case File.open("/proc/#{pid}/fd/4", [:write, :utf8]) do
        {:ok, log} ->
          try do
            put_env(Map.merge(read_env(Path.join(req, "env")), launcher))
            logged(log, fn -> build() end)
          after
            File.close(log)
          end

        {:error, reason} ->
          IO.puts("cannot write the log of build #{pid}: #{:file.format_error(reason)}")
          "unserved"
      end

    write_new(Path.join(req, "status"), status)
    wake(pid)
    status
  end

  defp logged(log, fun) do
    devices = for name <- [:standard_error, :user], pid = Process.whereis(name), do: {name, pid}

    try do
      Enum.each(devices, fn {name, _} -> reregister(name, spawn(fn -> forward(log) end)) end)

      server = self()

      {_, ref} =
        spawn_monitor(fn ->
          Process.group_leader(self(), log)
          send(server, {self(), :status, fun.()})
        end)

      receive do
        {:DOWN, ^ref, :process, pid, :normal} ->
          receive do
            {^pid, :status, status} -> Integer.to_string(status)
          end

        {:DOWN, ^ref, :process, _, reason} ->
          report(log, Exception.format_exit(reason))
      end
    after
      for {name, pid} <- devices do
        forwarder = Process.whereis(name)
        reregister(name, pid)
        if forwarder, do: Process.exit(forwarder, :kill)
      end
    end
  end

  # An IO device that passes every request on to LOG (the reply goes to the requester).
  defp forward(log) do
    receive do
      {:io_request, _, _, _} = request -> send(log, request)
      _ -> :ok
    end

    forward(log)
  end

  defp reregister(name, pid) do
    Process.unregister(name)
    Process.register(pid, name)
  end

  defp report(log, msg) do
    IO.puts(log, "** (release-oci Mix server) " <> msg)
    "1"
  end

  # What `elixir -S mix release_oci.assemble` does after starting: the configuration loaded,
  # then the task; every task may run again (Mix.Task.clear/0) and dependencies are read anew.
  defp build do
    Mix.Task.clear()
    Mix.Dep.clear_cached()

    try do
      Mix.Task.run("loadconfig")
      Mix.Tasks.ReleaseOci.Assemble.assemble_all()
      0
    rescue
      e in Mix.Error ->
        IO.puts(:stderr, "** (Mix) " <> Exception.message(e))
        1

      e ->
        IO.puts(:stderr, Exception.format(:error, e, __STACKTRACE__))
        1
    catch
      {:release_oci_fail, msg} ->
        IO.puts("error: " <> msg)
        1

      :exit, {:shutdown, code} when is_integer(code) ->
        code

      kind, reason ->
        IO.puts(:stderr, Exception.format(kind, reason, __STACKTRACE__))
        1
    end
  end

  defp read_env(file) do
    for pair <- file |> File.read!() |> :binary.split(<<0>>, [:global, :trim_all]),
        [k, v] <- [:binary.split(pair, "=")],
        into: %{},
        do: {k, v}
  end

  defp put_env(env) do
    for {k, _} <- System.get_env(), not Map.has_key?(env, k), do: System.delete_env(k)
    System.put_env(env)
  end

  # The build script waits for its status in short sleeps: SIGUSR1 ends the one it is in.
  defp wake(pid) do
    System.cmd("kill", ["-USR1", pid], stderr_to_stdout: true)
    :ok
  rescue
    _ -> :ok
  end

  defp write_new(file, content) do
    File.write!(file <> ".new", content)
    File.rename!(file <> ".new", file)
  end
end

defmodule Mix.Tasks.ReleaseOci.Serve.Wake do
  @moduledoc false
  @behaviour :gen_event

  def init(server), do: {:ok, server}

  def handle_event(:sigusr2, server) do
    send(server, :wake)
    {:ok, server}
  end

  def handle_event(_, server), do: {:ok, server}
  def handle_call(_, server), do: {:ok, :ok, server}
  def handle_info(_, server), do: {:ok, server}
end
