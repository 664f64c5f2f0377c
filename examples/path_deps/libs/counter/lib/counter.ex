defmodule Counter do
  @moduledoc "Named counters kept in an Agent started by the `:counter` application."
  use Agent

  def start_link(_opts), do: Agent.start_link(fn -> %{} end, name: __MODULE__)

  @doc "Increments the counter `name` and returns its new value."
  @spec next(term()) :: pos_integer()
  def next(name) do
    Agent.get_and_update(__MODULE__, fn counts ->
      n = Map.get(counts, name, 0) + 1
      {n, Map.put(counts, name, n)}
    end)
  end
end

defmodule Counter.Application do
  @moduledoc false
  use Application

  @impl true
  def start(_type, _args) do
    Supervisor.start_link([Counter], strategy: :one_for_one, name: Counter.Supervisor)
  end
end
