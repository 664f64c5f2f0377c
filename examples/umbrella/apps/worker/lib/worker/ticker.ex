defmodule Worker.Ticker do
  @moduledoc "A background job: counts ticks; logs `worker: ready` once it runs."
  use GenServer
  require Logger

  def start_link(_opts), do: GenServer.start_link(__MODULE__, 0, name: __MODULE__)

  def ticks, do: GenServer.call(__MODULE__, :ticks)

  @impl true
  def init(count) do
    Logger.info("worker: ready")
    schedule()
    {:ok, count}
  end

  @impl true
  def handle_info(:tick, count) do
    schedule()
    {:noreply, count + 1}
  end

  @impl true
  def handle_call(:ticks, _from, count), do: {:reply, count, count}

  defp schedule,
    do: Process.send_after(self(), :tick, Application.get_env(:worker, :interval_ms, 1_000))
end
