[inputs: ["{mix,.formatter}.exs", "{lib,test}/**/*.{ex,exs}", "upgrade-0.2.0/**/*.{ex,exs}"]]
