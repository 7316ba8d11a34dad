import jax

# Every correctness test runs in float64 (DESIGN.md section 2).
jax.config.update("jax_enable_x64", True)
