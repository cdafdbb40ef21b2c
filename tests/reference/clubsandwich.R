# Reference for regen's bias-reduced cluster sandwich (CR2) and its t(G - 1) reference:
# clubSandwich::vcovCR(type = "CR2") on an ordinary linear model with unequal clusters.
# Writes clubsandwich_input.csv and clubsandwich_values.csv next to this script.
# Run: Rscript tests/reference/clubsandwich.R
suppressPackageStartupMessages(library(clubSandwich))
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
cat(R.version.string, "\n")
cat("clubSandwich", as.character(packageVersion("clubSandwich")), "\n")

set.seed(12)
G <- 12
sizes <- sample(1:5, G, replace = TRUE)
cluster <- rep(seq_len(G), sizes)
n <- length(cluster)
x <- round(rnorm(n), 6)
z <- as.numeric(runif(n) < 0.3)
y <- round(1 + 0.5 * x - 0.3 * z + rnorm(G)[cluster] + rnorm(n), 6)
data <- data.frame(cluster = cluster, x = x, z = z, y = y)
write.csv(data, file.path(here, "clubsandwich_input.csv"), row.names = FALSE)

data <- read.csv(file.path(here, "clubsandwich_input.csv"))  # fit what was written
fit <- lm(y ~ x + z, data = data)
VCR <- vcovCR(fit, cluster = data$cluster, type = "CR2")
naive <- coef_test(fit, vcov = VCR, test = "naive-t")
V <- as.matrix(VCR)

# Check: Bell & McCaffrey's formula written out by hand gives the same matrix.
X <- model.matrix(fit)
e <- residuals(fit)
bread <- solve(crossprod(X))
meat <- matrix(0, 3, 3)
for (g in unique(data$cluster)) {
  rows <- data$cluster == g
  H <- X[rows, , drop = FALSE] %*% bread %*% t(X[rows, , drop = FALSE])
  ev <- eigen(diag(sum(rows)) - H, symmetric = TRUE)
  A <- ev$vectors %*% diag(1 / sqrt(ev$values), sum(rows)) %*% t(ev$vectors)
  u <- t(X[rows, , drop = FALSE]) %*% A %*% e[rows]
  meat <- meat + u %*% t(u)
}
by_hand <- bread %*% meat %*% bread
stopifnot(max(abs(by_hand - V)) < 1e-12 * max(abs(V)))

terms <- colnames(X)
out <- rbind(
  data.frame(quantity = "vcov_cr2", term = paste(rep(terms, each = 3), rep(terms, 3), sep = "|"),
             value = sprintf("%.17g", as.vector(t(V)))),
  data.frame(quantity = "coef", term = terms, value = sprintf("%.17g", coef(fit))),
  data.frame(quantity = "p_naive_t", term = terms, value = sprintf("%.17g", naive$p_t)),
  data.frame(quantity = "df_naive_t", term = terms, value = sprintf("%.17g", naive$df)),
  data.frame(quantity = "n_clusters", term = "", value = sprintf("%d", G)))
write.csv(out, file.path(here, "clubsandwich_values.csv"), row.names = FALSE, quote = TRUE)
print(V)
print(naive)
